/**
 * `VsockSeqpacketConn`: a connected SOCK_SEQPACKET socket — reliable,
 * ordered, and one `send` is one `receive` (Linux 5.14+; the virtio and
 * loopback transports have it).
 *
 * @module
 */
import { adapter } from "../ffi/mod.ts";
import type { VsockAddr } from "./addr.ts";
import { MSG_NOSIGNAL, SHUT_WR, SO_ERROR } from "./constants.ts";
import { check, VsockError } from "./errors.ts";
import { getIntOption } from "./options.ts";
import type { Reactor } from "./reactor.ts";
import { libc } from "./socket.ts";
import { VsockSocket } from "./vsock_socket.ts";
import { EAGAIN, EBADF, EINTR, EMSGSIZE, ENOMEM, EPIPE } from "./errno.ts";

/** With it, recv returns a message's real length even when the buffer was shorter. */
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const SHUT_RDWR = 2;
const FIONBIO = 0x5421;

/**
 * Why sends are blocking calls off the JS thread: Linux's vsock_connectible_sendmsg,
 * for a non-blocking SEQPACKET socket whose peer has room for only part of a
 * message, queues that part and still returns EAGAIN (the count is reported
 * only for a whole message). Any retry then corrupts the message stream — seen
 * in the test VM as a 200,000-byte message arriving mangled. So these sockets
 * stay in blocking mode, receives pass MSG_DONTWAIT, and each send is one
 * blocking call that queues the whole message or fails.
 */
let sendsInFlight = 0;
const sendQueue: (() => void)[] = [];

async function sendSlot(): Promise<void> {
  if (sendsInFlight < adapter.maxSendsInFlight) {
    sendsInFlight++;
    return;
  }
  await new Promise<void>((resolve) => sendQueue.push(resolve));
}

function releaseSendSlot(): void {
  const next = sendQueue.shift();
  if (next) next(); // the slot passes straight on
  else sendsInFlight--;
}

/** Puts a connected SEQPACKET fd in blocking mode (see above). */
export function makeBlocking(fd: number): void {
  check(libc.ioctl(fd, FIONBIO, new Uint8Array(4)), "ioctl(FIONBIO)");
}

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
  #sending = 0;

  /** @internal Made by `connect()`, a listener, or `fromFd()`; the fd is blocking and registered with `reactor`. */
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

  /**
   * Sends one message, whole: it resolves once the kernel has queued all of
   * it, waiting while the peer's buffer is full. A message larger than the
   * peer's buffer fails with `EMSGSIZE` and sends nothing.
   */
  async send(message: Uint8Array): Promise<void> {
    if (!(message instanceof Uint8Array)) throw new TypeError("VsockSeqpacketConn.send takes a Uint8Array");
    if (message.byteLength === 0) throw new RangeError("vsock cannot carry an empty SEQPACKET message");
    this.assertOpen("send");
    await sendSlot();
    this.#sending++;
    let n: number;
    try {
      if (this.closed) throw this.#closedWhileSending();
      n = await adapter.sendOffThread(this.fd, message);
    } finally {
      this.#sending--;
      releaseSendSlot();
      if (this.closed && this.#sending === 0) this.#release();
    }
    if (n === message.byteLength) return;
    if (this.closed) throw this.#closedWhileSending();
    throw this.#sendError(n, message.byteLength);
  }

  #closedWhileSending(): VsockError {
    return new VsockError({
      errno: EBADF,
      syscall: "send",
      address: this.remoteAddr,
      message: `send to ${this.remoteAddr} stopped: the message connection was closed (EBADF)`,
    });
  }

  /** The error for a failed send; `n` is `-errno`, or `-1` when the runtime could not read errno. */
  #sendError(n: number, size: number): VsockError {
    let errno = -n;
    if (n === -1 || n >= 0) {
      // errno unknown: a pending socket error, else a zero-length send (which
      // queues nothing) tells a broken connection from a too-large message.
      const soError = getIntOption(this.fd, SO_ERROR, "SO_ERROR");
      const probe = libc.send(this.fd, new Uint8Array(0), MSG_NOSIGNAL | MSG_DONTWAIT);
      errno = soError !== 0 ? soError : probe < 0 ? -probe : EMSGSIZE;
    }
    if (errno === EMSGSIZE || errno === ENOMEM) {
      // Linux before 6.5 reports a too-large SEQPACKET message as ENOMEM.
      return new VsockError({
        errno,
        code: "EMSGSIZE",
        syscall: "send",
        address: this.remoteAddr,
        message:
          `send to ${this.remoteAddr} failed: a ${size}-byte message is larger than the peer's vsock buffer (its bufferSize) (EMSGSIZE)`,
      });
    }
    return new VsockError({ errno: errno || EPIPE, syscall: "send", address: this.remoteAddr });
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
      const n = libc.recv(this.fd, buffer, MSG_TRUNC | MSG_DONTWAIT);
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

  /**
   * Closes at once: a pending `receive()` resolves `null`, a pending `send()`
   * rejects. A second call does nothing.
   */
  close(): void {
    if (!this.markClosed()) return;
    // Wakes a send blocked in the kernel (it returns EPIPE); the fd itself is
    // closed once no send is using it, so no call outlives its socket.
    libc.shutdown(this.fd, SHUT_RDWR);
    this.#reactor.unregister(this.fd);
    if (this.#sending === 0) this.#release();
  }

  #released = false;
  #release(): void {
    if (this.#released) return;
    this.#released = true;
    libc.close(this.fd);
  }

  /** Yields messages until the peer finishes sending or the socket is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (let message = await this.receive(); message !== null; message = await this.receive()) yield message;
  }
}
