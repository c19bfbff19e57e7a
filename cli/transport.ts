/**
 * Dialing and serving endpoints as `node:stream` Duplexes: `node:net` sockets
 * for `tcp:` and `unix:`, `ConnDuplex` over a `VsockConn` for `vsock:` and
 * hybrid `unix:///PATH?port=N`. Every
 * Duplex is half-open, so `a.pipe(b)` turns `a`'s EOF into `b.end()`, a
 * half-close, and keeps the other direction flowing.
 *
 * The library itself (and with it the FFI adapter) is imported only when a
 * vsock endpoint is used: `--help` and `tcp:`/`unix:` forwards need no FFI.
 *
 * @module
 */
import net from "node:net";
import process from "node:process";
import type { Duplex } from "node:stream";
import { ConnDuplex } from "../src/conn_duplex.ts";
import type { VsockAddr } from "../src/addr.ts";
import type { VsockConn } from "../src/conn.ts";
import type { HybridAddr } from "../src/hybrid/addr.ts";
import type { Endpoint } from "./endpoint.ts";

/** Who connected: printable text, and the CID when it came over vsock. */
export interface Peer {
  text: string;
  cid?: number;
}

/** A listening endpoint. */
export interface Server {
  /** The bound address as endpoint text (the real port when 0 was asked for). */
  readonly address: string;
  /** Stops accepting; connections already handed out stay open. */
  close(): void;
}

/** Options for {@link dial}. */
export interface DialOptions {
  /** Milliseconds before giving up with `ETIMEDOUT`. */
  timeout?: number;
  /** Aborting gives up the dial. */
  signal?: AbortSignal;
  /** vsock and hybrid vsock only: `connect()`'s `busyPoll` window in µs. */
  busyPoll?: number;
}

function timeoutError(ms: number): Error {
  return Object.assign(new Error(`connect timed out after ${ms} ms`), { code: "ETIMEDOUT" });
}

function dialNet(options: net.NetConnectOpts, dialOptions: DialOptions): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ ...options, allowHalfOpen: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fail = (error: Error): void => {
      clearTimeout(timer);
      dialOptions.signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(dialOptions.signal!.reason as Error);
    if (dialOptions.timeout !== undefined) {
      timer = setTimeout(() => fail(timeoutError(dialOptions.timeout!)), dialOptions.timeout);
    }
    dialOptions.signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("error", fail);
    socket.once("connect", () => {
      clearTimeout(timer);
      dialOptions.signal?.removeEventListener("abort", onAbort);
      socket.removeListener("error", fail);
      resolve(socket);
    });
  });
}

/** Connects to `endpoint`; rejects with the transport's error (its `code` is the errno name). */
export async function dial(endpoint: Endpoint, options: DialOptions = {}): Promise<Duplex> {
  switch (endpoint.kind) {
    case "tcp":
      return await dialNet({ host: endpoint.host, port: endpoint.port }, options);
    case "unix":
      return await dialNet({ path: endpoint.path }, options);
    case "vsock":
    case "hybrid": {
      const { connect } = await import("../mod.ts");
      const { timeout, signal, busyPoll } = options;
      const conn = await connect(
        endpoint.kind === "vsock"
          ? { cid: endpoint.cid, port: endpoint.port, timeout, signal, busyPoll }
          : { uds: endpoint.path, port: endpoint.port, timeout, signal, busyPoll },
      );
      return new ConnDuplex(conn);
    }
  }
}

function netServe(
  listenOn: net.ListenOptions,
  describe: (server: net.Server) => string,
  onConnection: (stream: Duplex, peer: Peer) => void,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      const peer = socket.remoteAddress === undefined ? "unix" : `${socket.remoteAddress}:${socket.remotePort}`;
      onConnection(socket, { text: peer });
    });
    server.once("error", reject);
    server.listen(listenOn, () => {
      server.removeListener("error", reject);
      resolve({ address: describe(server), close: () => server.close() });
    });
  });
}

/**
 * Listens on `endpoint` and hands each accepted connection to `onConnection`
 * until the returned server's `close()`.
 */
export async function serve(endpoint: Endpoint, onConnection: (stream: Duplex, peer: Peer) => void): Promise<Server> {
  switch (endpoint.kind) {
    case "tcp":
      return await netServe({ host: endpoint.host, port: endpoint.port }, (server) => {
        const a = server.address() as net.AddressInfo;
        return `tcp:${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
      }, onConnection);
    case "unix":
      return await netServe({ path: endpoint.path }, () => `unix:${endpoint.path}`, onConnection);
    case "vsock": {
      const { listen } = await import("../mod.ts");
      const listener = listen({ cid: endpoint.cid, port: endpoint.port });
      const a = listener.addr;
      return acceptLoop(listener, `vsock:${a.cid === 0xffffffff ? "any" : a.cid}:${a.port}`, onConnection);
    }
    case "hybrid": {
      // Guests dialing host port N reach the VMM, which connects to PATH_N: the listener's file.
      const { listen } = await import("../mod.ts");
      const listener = listen({ uds: endpoint.path, port: endpoint.port });
      return acceptLoop(listener, `${listener.addr.toString()} (${listener.path})`, onConnection);
    }
  }
}

/** What {@link acceptLoop} needs of a vsock or hybrid listener. */
interface Accepting {
  accept(): Promise<VsockConn<VsockAddr | HybridAddr>>;
  close(): void;
}

/** Hands every accepted connection to `onConnection` until the server is closed. */
function acceptLoop(
  listener: Accepting,
  address: string,
  onConnection: (stream: Duplex, peer: Peer) => void,
): Server {
  let open = true;
  (async () => {
    while (open) {
      let conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (!open) return;
        // Accept errors for one connection (ECONNABORTED, EMFILE) must not stop the server.
        process.stderr.write(`vsock: accept: ${(error as Error).message}\n`);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const remote = conn.remoteAddr;
      onConnection(new ConnDuplex(conn), {
        text: remote.toString(),
        cid: remote.transport === "vsock" ? remote.cid : undefined,
      });
    }
  })();
  return {
    address,
    close: () => {
      open = false;
      listener.close();
    },
  };
}
