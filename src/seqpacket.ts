/**
 * `VsockSeqpacketConn`: a connected SOCK_SEQPACKET socket — reliable,
 * ordered, and one `send` is one `receive` (Linux 5.14+; the virtio and
 * loopback transports have it).
 *
 * @module
 */
import type { VsockAddr } from "./addr.ts";
import { MSG_NOSIGNAL, SHUT_WR } from "./constants.ts";
import { check, VsockError } from "./errors.ts";
import type { Reactor } from "./reactor.ts";
import { libc } from "./socket.ts";
import { VsockSocket } from "./vsock_socket.ts";

const EINTR = 4;
const EAGAIN = 11;
const EMSGSIZE = 90;
/** With it, recv returns a message's real length even when the buffer was shorter. */
const MSG_TRUNC = 0x20;

/**
 * One receive buffer for the whole process: receives are synchronous calls on
 * the JS thread, so they never overlap, and the message is copied out at once.
 */
let scratch = new Uint8Array(0);
function scratchOf(size: number): Uint8Array {
  if (scratch.byteLength < size) scratch = new Uint8Array(size);
  return scratch;
}

/**
 * A connected vsock message socket, from `connect({ type: "seqpacket" })` or a
 * seqpacket listener. Message boundaries are kept: each `send(message)`
 * arrives as exactly one `receive()`.
 *
 * The largest message is the receiver's `bufferSize` (256 KiB unless raised):
 * a larger `send` fails with `EMSGSIZE` and sends nothing. Empty messages
 * cannot be carried by vsock and are refused with a `RangeError`.
 *
 * @example
 * ```ts
 * using conn = await connect({ cid: 1, port: 5000, type: "seqpacket" });
 * await conn.send(new TextEncoder().encode("one message"));
 * for await (const message of conn) console.log(message.byteLength);
 * ```
 */
export class VsockSeqpacketConn extends VsockSocket implements AsyncIterable<Uint8Array> {
  /** This end's address, from `getsockname`. */
  readonly localAddr: VsockAddr;
  /** The peer's address. */
  readonly remoteAddr: VsockAddr;
  readonly #reactor: Reactor;
  #receiveLimit: number;

  /** @internal Made by `connect()`, a listener, or `fromFd()`; the fd is registered with `reactor`. */
  constructor(fd: number, localAddr: VsockAddr, remoteAddr: VsockAddr, reactor: Reactor) {
    super(fd, "message connection");
    this.localAddr = localAddr;
    this.remoteAddr = remoteAddr;
    this.#reactor = reactor;
    // Nothing larger than our own buffer can be sent to us (the sender gets EMSGSIZE).
    this.#receiveLimit = super.bufferSize;
  }

  /** Errors name the peer. */
  protected get errorAddress(): VsockAddr {
    return this.remoteAddr;
  }

  /** `SO_VM_SOCKETS_BUFFER_SIZE`; here it is also the largest message this end can receive. */
  override get bufferSize(): number {
    return super.bufferSize;
  }
  override set bufferSize(value: number) {
    super.bufferSize = value;
    this.#receiveLimit = Math.max(this.#receiveLimit, super.bufferSize);
  }

  /** Sends one message, whole; waits while the peer's buffer has no room. */
  async send(message: Uint8Array): Promise<void> {
    if (!(message instanceof Uint8Array)) throw new TypeError("VsockSeqpacketConn.send takes a Uint8Array");
    if (message.byteLength === 0) throw new RangeError("vsock cannot carry an empty SEQPACKET message");
    for (;;) {
      this.assertOpen("send");
      const n = libc.send(this.fd, message, MSG_NOSIGNAL);
      if (n === message.byteLength) return;
      if (n >= 0) {
        throw new VsockError({
          errno: EMSGSIZE,
          syscall: "send",
          address: this.remoteAddr,
          message: `send to ${this.remoteAddr} queued ${n} of ${message.byteLength} bytes (EMSGSIZE)`,
        });
      }
      if (n === -EAGAIN) await this.#reactor.wait(this.fd, "write");
      else if (n === -EMSGSIZE) {
        throw new VsockError({
          errno: EMSGSIZE,
          syscall: "send",
          address: this.remoteAddr,
          message:
            `send to ${this.remoteAddr} failed: a ${message.byteLength}-byte message is larger than the peer's vsock buffer (its bufferSize) (EMSGSIZE)`,
        });
      } else if (n !== -EINTR) throw new VsockError({ errno: -n, syscall: "send", address: this.remoteAddr });
    }
  }

  /**
   * Receives the next message; `null` when the peer has finished sending, or
   * for a receive pending when `close()` is called. A message that did not
   * fit (possible only after lowering `bufferSize`) is reported as an
   * `EMSGSIZE` error naming both sizes, never returned cut short.
   */
  async receive(): Promise<Uint8Array | null> {
    this.assertOpen("receive");
    for (;;) {
      if (this.closed) return null;
      const buffer = scratchOf(this.#receiveLimit);
      const n = libc.recv(this.fd, buffer, MSG_TRUNC);
      if (n > buffer.byteLength) {
        throw new VsockError({
          errno: EMSGSIZE,
          syscall: "recv",
          address: this.remoteAddr,
          message:
            `a ${n}-byte message from ${this.remoteAddr} did not fit the ${buffer.byteLength}-byte receive buffer and was cut by the kernel (EMSGSIZE)`,
        });
      }
      if (n > 0) return buffer.slice(0, n);
      if (n === 0) return null; // vsock has no empty messages: 0 is end of stream
      if (n === -EAGAIN) await this.#reactor.wait(this.fd, "read");
      else if (n !== -EINTR) throw new VsockError({ errno: -n, syscall: "recv", address: this.remoteAddr });
    }
  }

  /** Tells the peer no more messages come; receiving goes on. */
  closeWrite(): Promise<void> {
    try {
      this.assertOpen("closeWrite");
      check(libc.shutdown(this.fd, SHUT_WR), "shutdown", this.remoteAddr);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Closes at once; a pending `receive()` resolves `null`. A second call does nothing. */
  close(): void {
    if (!this.markClosed()) return;
    this.#reactor.unregister(this.fd);
    libc.close(this.fd);
  }

  /** Yields messages until the peer finishes sending or the socket is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (let message = await this.receive(); message !== null; message = await this.receive()) yield message;
  }
}
