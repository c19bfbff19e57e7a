/**
 * The HTTP layer's unit tests run on the host, which has no vsock loopback:
 * this gives them connections of the same shape as `VsockConn` over TCP
 * loopback (node:net), with made-up vsock addresses, so the HTTP code runs
 * unchanged. The real-vsock proof is in test/e2e/http.test.ts.
 */
import { createServer, type Server, Socket } from "node:net";
import { VsockAddr } from "../../mod.ts";
import { ConnDuplex } from "../../src/conn_duplex.ts";
import type { ConnListener } from "../../src/http/serve.ts";

/** A `VsockConn`-shaped connection over a TCP socket. */
export class TcpConn {
  readonly localAddr: VsockAddr;
  readonly remoteAddr: VsockAddr;
  readonly #socket: Socket;
  #ended = false;
  #failure: Error | null = null;
  #wake: (() => void) | null = null;

  /**
   * @param lateWakeMs delays each read's wake-up after bytes arrive, as a busy
   * process delivers a readiness edge late (the bytes wait unread meanwhile).
   */
  constructor(socket: Socket, localAddr: VsockAddr, remoteAddr: VsockAddr, lateWakeMs = 0) {
    this.#socket = socket;
    this.localAddr = localAddr;
    this.remoteAddr = remoteAddr;
    const wake = (): void => {
      const w = this.#wake;
      this.#wake = null;
      w?.();
    };
    socket.on("readable", lateWakeMs > 0 ? () => setTimeout(wake, lateWakeMs) : wake);
    socket.on("end", () => (this.#ended = true, wake()));
    socket.on("error", (e) => (this.#failure = e, wake()));
    socket.on("close", () => (this.#ended = true, wake()));
  }

  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      const chunk = this.#socket.read(Math.min(p.byteLength, this.#socket.readableLength || p.byteLength)) as
        | Uint8Array
        | null;
      if (chunk !== null) {
        p.set(chunk);
        return chunk.byteLength;
      }
      if (this.#failure) throw this.#failure;
      if (this.#ended || this.#socket.destroyed) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Like `VsockConn.hasInput`: bytes arrived that no read took yet. */
  hasInput(): boolean {
    return this.#socket.readableLength > 0;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#socket.destroyed) return Promise.reject(Object.assign(new Error("closed"), { code: "EPIPE" }));
    return new Promise((resolve, reject) =>
      this.#socket.write(p.slice(), (error) => (error ? reject(error) : resolve(p.byteLength)))
    );
  }

  closeWrite(): Promise<void> {
    this.#socket.end();
    return Promise.resolve();
  }

  close(): void {
    this.#socket.destroy();
  }
}

/**
 * A {@link ConnListener} over TCP loopback whose connections claim to come
 * from `peerCid`; `lateWakeMs` is handed to each {@link TcpConn}.
 */
export async function tcpListener(
  peerCid = 3,
  lateWakeMs = 0,
): Promise<ConnListener & { port: number; server: Server }> {
  const queue: TcpConn[] = [];
  const waiting: ((c: TcpConn | null) => void)[] = [];
  let closed = false;
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    const conn = new TcpConn(
      socket,
      new VsockAddr(1, port),
      new VsockAddr(peerCid, socket.remotePort ?? 0),
      lateWakeMs,
    );
    const w = waiting.shift();
    if (w) w(conn);
    else queue.push(conn);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    server,
    addr: new VsockAddr(1, port),
    get closed() {
      return closed;
    },
    accept(): Promise<TcpConn> {
      const next = queue.shift();
      if (next) return Promise.resolve(next);
      if (closed) return Promise.reject(new Error("closed"));
      return new Promise((resolve, reject) => waiting.push((c) => (c ? resolve(c) : reject(new Error("closed")))));
    },
    close(): void {
      closed = true;
      server.close();
      for (const w of waiting.splice(0)) w(null);
    },
  };
}

/** A TCP connection to `port` as a `VsockConn`-shaped connection. */
export function tcpConnect(port: number): Promise<TcpConn> {
  return new Promise((resolve, reject) => {
    const socket = new Socket({ allowHalfOpen: true });
    socket.once("error", reject);
    socket.connect(port, "127.0.0.1", () => {
      socket.off("error", reject);
      resolve(new TcpConn(socket, new VsockAddr(-1 >>> 0, socket.localPort ?? 0), new VsockAddr(1, port)));
    });
  });
}

/** A TCP connection to `port` as the HTTP client's pool gets one where it is bridged: a `ConnDuplex`. */
export async function tcpDial(port: number): Promise<ConnDuplex> {
  return new ConnDuplex(await tcpConnect(port));
}
