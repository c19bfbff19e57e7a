/**
 * `VsockConn`: a connected vsock stream with the shape of `Deno.Conn`.
 *
 * @module
 */
import type { StreamIO } from "../ffi/mod.ts";
import type { VsockAddr } from "./addr.ts";
import type { HybridAddr } from "./hybrid/addr.ts";
import { kernelHasInput } from "./socket.ts";
import { VsockSocket } from "./vsock_socket.ts";

/** Chunk size for `readable`; reads are never larger than this. */
const READ_CHUNK = 64 * 1024;
/** Chunks up to this size are copied out so the read buffer can be reused. */
const COPY_BELOW = 8 * 1024;

function assertBytes(value: unknown, method: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`VsockConn.${method} takes a Uint8Array, got ${value === null ? "null" : typeof value}`);
  }
}

/**
 * A connected vsock stream socket, from {@link connect} or a listener's
 * `accept()`. `A` is its address type: `VsockAddr` for `AF_VSOCK`,
 * `HybridAddr` for a connection through a VMM's vsock Unix socket (hybrid
 * vsock), which behaves the same apart from half-close (see `closeWrite()`). Use `read`/`write` directly or the `readable`/`writable`
 * streams (not both for the same direction at once).
 *
 * `read` resolves `null` at end of stream, and also for a read that was
 * pending when `close()` was called; any call made after `close()` rejects
 * with a `VsockError` whose code is `EBADF`.
 *
 * @example
 * ```ts
 * using conn = await connect({ cid: VMADDR_CID_LOCAL, port: 5000 });
 * await conn.write(new TextEncoder().encode("hello"));
 * const buf = new Uint8Array(100);
 * const n = await conn.read(buf);
 * ```
 */
export class VsockConn<A extends VsockAddr | HybridAddr = VsockAddr> extends VsockSocket {
  /** This end's address, from `getsockname` (hybrid: see `HybridAddr`). */
  readonly localAddr: A;
  /** The peer's address: the one connected to, or `accept4`'s (hybrid: see `HybridAddr`). */
  readonly remoteAddr: A;
  readonly #io: StreamIO;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  /** @internal Made by `connect()` and `VsockListener.accept()`. */
  constructor(io: StreamIO, fd: number, localAddr: A, remoteAddr: A) {
    super(fd, "connection");
    this.#io = io;
    this.localAddr = localAddr;
    this.remoteAddr = remoteAddr;
  }

  /** Errors name the peer. */
  protected get errorAddress(): A {
    return this.remoteAddr;
  }

  /** Reads into `p`; resolves with the byte count (at least 1 for a non-empty `p`) or `null` at end of stream. */
  read(p: Uint8Array): Promise<number | null> {
    try {
      assertBytes(p, "read");
      this.assertOpen("read");
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#io.read(p);
  }

  /** Writes a prefix of `p`; resolves with how many bytes went (maybe fewer than `p.length`). */
  write(p: Uint8Array): Promise<number> {
    try {
      assertBytes(p, "write");
      this.assertOpen("write");
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#io.write(p);
  }

  /** Writes all of `p`, waiting for room as needed. */
  async writeAll(p: Uint8Array): Promise<void> {
    assertBytes(p, "writeAll");
    let done = 0;
    while (done < p.byteLength) done += await this.write(done === 0 ? p : p.subarray(done));
  }

  /**
   * Half-closes: the peer reads end of stream, and this side can still read.
   *
   * Hybrid vsock (`connect({ uds, port })`) depends on the VMM: Firecracker
   * turns the host's `SHUT_WR` into a full close of the vsock connection (the
   * guest gets SHUTDOWN for both directions, and this side then reads EOF,
   * possibly before the guest's answer; Firecracker 81b38b9
   * csm/connection.rs); Cloud Hypervisor (v53 and later) forwards it as a
   * half-close (ae44c29 csm/connection.rs, `test_local_read_eof_sends_half_shutdown`). Where the answer matters, let the protocol say
   * where a request ends (a length, a delimiter, HTTP's framing) instead.
   */
  closeWrite(): Promise<void> {
    try {
      this.assertOpen("closeWrite");
      this.#io.closeWrite();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Closes the socket now. A second call does nothing. */
  close(): void {
    if (this.markClosed()) this.#io.close();
  }

  /**
   * Lets a pending `read` keep the process alive again: the default, undoing
   * {@link unref}. As `Deno.Conn.ref()`.
   */
  ref(): void {
    if (!this.closed) this.#io.holdReads(true);
  }

  /**
   * A pending `read` no longer keeps the process alive, as `Deno.Conn.unref()`:
   * for a connection that waits for something that may never come (a pooled
   * keep-alive connection, a control channel), so the program can exit when
   * nothing else is left. Pending writes still hold it. Idle connections never
   * hold the process; this is about reads waiting for data.
   *
   * @example
   * ```ts
   * const events = await connect({ cid: 2, port: 9000 });
   * events.unref(); // listen for pushes while there is other work, then exit with it
   * for await (const chunk of events.readable) console.log(`${chunk.length} bytes`);
   * ```
   */
  unref(): void {
    if (!this.closed) this.#io.holdReads(false);
  }

  /**
   * `true` when bytes have arrived that no `read` has taken yet, queued in
   * the runtime or in the kernel; nothing is consumed. The HTTP server asks
   * before closing an idle keep-alive connection, so a request already on its
   * way is answered instead of cut. `false` once closed.
   */
  hasInput(): boolean {
    return !this.closed && (this.#io.queued > 0 || kernelHasInput(this.fd));
  }

  /** The incoming bytes as a stream; it reads only when consumed. Cancelling it closes the connection. */
  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= this.#makeReadable();
    return this.#readable;
  }

  /** A stream into the connection; each chunk is written in full before the next is taken. Closing it half-closes. */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.writeAll(chunk),
      close: () => (this.closed ? undefined : this.closeWrite()),
      abort: () => this.close(),
    });
    return this.#writable;
  }

  #makeReadable(): ReadableStream<Uint8Array> {
    let buffer = new Uint8Array(READ_CHUNK);
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const n = this.closed ? null : await this.read(buffer);
        if (n === null) {
          controller.close();
        } else if (n <= COPY_BELOW) {
          controller.enqueue(buffer.slice(0, n));
        } else {
          controller.enqueue(buffer.subarray(0, n));
          buffer = new Uint8Array(READ_CHUNK);
        }
      },
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
  }
}
