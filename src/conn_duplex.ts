/**
 * A `node:stream` `Duplex` over a connection of this library, so each
 * runtime's own `node:http` (llhttp-based) can serve and send HTTP/1.1 on it:
 * the server is handed it with `emit("connection", duplex)`, the client gets
 * it from an agent's `createConnection`. The `vsock` command line tool
 * splices it with `node:net` sockets (`pipe` turns EOF into `closeWrite`).
 *
 * Besides the stream, `node:http` calls a few `net.Socket` methods on its
 * socket; they are here with their `net.Socket` meaning: `setTimeout` (an
 * idle timer: Node's keep-alive timeout and `server.timeout` rely on it, and
 * Deno's `node:http` calls it on every connection), `setNoDelay`,
 * `setKeepAlive`, `ref`/`unref`, and the address getters.
 *
 * @module
 */
import { Duplex } from "node:stream";
import { clearTimeout, setTimeout } from "node:timers";
import type { VsockAddr } from "./addr.ts";

/** What the bridge needs of a connection: `VsockConn` has it, and so does every transport that yields one. */
export interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
  /** Whether bytes wait that no read took yet (see `VsockConn.hasInput`); a transport without it counts as none. */
  hasInput?(): boolean;
  /** Whether a pending read keeps the process alive (see `VsockConn.unref`); a transport without them always holds it. */
  ref?(): void;
  unref?(): void;
  readonly localAddr: VsockAddr | { toString(): string };
  readonly remoteAddr: VsockAddr | { toString(): string };
}

/** Bytes asked of the connection per read. */
const READ_SIZE = 64 * 1024;
/** Reads up to this size are copied out so the 64 KiB read buffer is reused. */
const COPY_BELOW = 8 * 1024;

/** `cid` and `port` of an address when it is a vsock one; `undefined` for other transports. */
function vsockParts(addr: ByteConn["localAddr"]): { cid: number; port: number } | undefined {
  const a = addr as Partial<VsockAddr>;
  return typeof a.cid === "number" && typeof a.port === "number" ? { cid: a.cid, port: a.port } : undefined;
}

/** See the module comment. Owns the connection: destroying the duplex closes it. */
export class ConnDuplex extends Duplex {
  /** The connection underneath. */
  readonly conn: ByteConn;
  /** When bytes last arrived (`Date.now()`), for idle checks. */
  lastReadAt: number = Date.now();
  #reading = false;
  #buffer = new Uint8Array(READ_SIZE);
  #idleMs = 0;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  /** @param conn a connected stream; the duplex owns it from now on. */
  constructor(conn: ByteConn) {
    // Half-open like the sockets node:http makes: the HTTP layer decides
    // what a peer's end of stream means, not the stream machinery.
    super({ allowHalfOpen: true });
    this.conn = conn;
  }

  override _read(): void {
    if (this.#reading) return;
    this.#reading = true;
    this.#pump().catch((error: Error) => this.destroy(error));
  }

  /** Reads until the consumer says stop (`push` returns false) or the peer ends. */
  async #pump(): Promise<void> {
    for (;;) {
      const n = await this.conn.read(this.#buffer);
      if (this.destroyed) return;
      this.lastReadAt = Date.now();
      this.#touch();
      if (n === null) {
        this.#reading = false;
        this.push(null);
        return;
      }
      let chunk: Uint8Array;
      if (n <= COPY_BELOW) chunk = this.#buffer.slice(0, n);
      else {
        chunk = this.#buffer.subarray(0, n);
        this.#buffer = new Uint8Array(READ_SIZE);
      }
      if (!this.push(chunk)) {
        this.#reading = false;
        return;
      }
    }
  }

  /** `true` when a byte has arrived that the consumer has not seen: in this stream's buffer or still in the connection. */
  hasInput(): boolean {
    return this.readableLength > 0 || (this.conn.hasInput?.() ?? false);
  }

  override _write(chunk: Uint8Array, _encoding: string, callback: (error?: Error | null) => void): void {
    this.#writeAll(chunk).then(() => callback(), callback);
  }

  override _writev(
    chunks: { chunk: Uint8Array; encoding: string }[],
    callback: (error?: Error | null) => void,
  ): void {
    // node:http corks head and body: one send for all of them.
    const total = chunks.reduce((n, c) => n + c.chunk.byteLength, 0);
    const joined = new Uint8Array(total);
    let at = 0;
    for (const { chunk } of chunks) {
      joined.set(chunk, at);
      at += chunk.byteLength;
    }
    this.#writeAll(joined).then(() => callback(), callback);
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    for (let done = 0; done < data.byteLength;) {
      done += await this.conn.write(done === 0 ? data : data.subarray(done));
      this.#touch();
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.conn.closeWrite().then(() => callback(), (error: Error) => {
      // The peer already went away: nothing left to half-close.
      callback((error as { code?: string }).code === "EBADF" ? null : error);
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#idleTimer);
    this.conn.close();
    callback(error);
  }

  /** `net.Socket.setTimeout`: emits `"timeout"` after `ms` without traffic; 0 turns it off. */
  setTimeout(ms: number, callback?: () => void): this {
    this.#idleMs = ms;
    if (callback) {
      if (ms === 0) this.removeListener("timeout", callback);
      else this.once("timeout", callback);
    }
    this.#touch();
    return this;
  }

  #touch(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#idleMs <= 0 || this.destroyed) return;
    this.#idleTimer = setTimeout(() => this.emit("timeout"), this.#idleMs);
    // Like net.Socket's: an idle timer never keeps the process alive.
    this.#idleTimer.unref();
  }

  /** No Nagle on vsock; accepted for `net.Socket` compatibility. */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  /** vsock sends no keep-alive probes (see `SocketOptions.keepAlive`); accepted for compatibility. */
  setKeepAlive(_enable?: boolean, _delay?: number): this {
    return this;
  }

  /**
   * `net.Socket.ref`, called by `http.Agent` on a socket it takes from its
   * pool: the duplex's pending read keeps the process alive again.
   */
  ref(): this {
    this.conn.ref?.();
    return this;
  }

  /**
   * `net.Socket.unref`, called by `http.Agent` on a socket it pools: the
   * duplex keeps reading (a server's close must reach the pool), but that
   * read no longer keeps the process alive.
   */
  unref(): this {
    this.conn.unref?.();
    return this;
  }

  /** The peer's CID as a string for vsock (what `net.Socket.remoteAddress` holds for IP), else its address. */
  get remoteAddress(): string {
    return String(vsockParts(this.conn.remoteAddr)?.cid ?? this.conn.remoteAddr.toString());
  }

  /** The peer's port. */
  get remotePort(): number | undefined {
    return vsockParts(this.conn.remoteAddr)?.port;
  }

  /** This end's CID as a string for vsock (`-1` = any: Linux reports no CID for outgoing sockets). */
  get localAddress(): string {
    return String(vsockParts(this.conn.localAddr)?.cid ?? this.conn.localAddr.toString());
  }

  /** This end's port. */
  get localPort(): number | undefined {
    return vsockParts(this.conn.localAddr)?.port;
  }

  /** `"vsock"`, where `net.Socket` says `"IPv4"`/`"IPv6"`. */
  get remoteFamily(): string {
    return "vsock";
  }
}
