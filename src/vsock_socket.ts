/**
 * `VsockSocket`: what every socket of the library shares — its fd, its
 * open/closed state, and typed access to its socket options.
 *
 * @module
 */
import type { VsockAddr } from "./addr.ts";
import type { HybridAddr } from "./hybrid/addr.ts";
import { closedError } from "./errors.ts";
import { getOption, setOption } from "./options.ts";

/**
 * The base of every vsock socket: connections, listeners, message and
 * datagram sockets.
 *
 * **fd ownership:** `fd` is exposed for interop (inspection, `setsockopt`
 * the library does not wrap, passing to a child). The object owns it and
 * closes it exactly once, in `close()`; do not close it yourself, and do not
 * use the number after `close()` (the kernel reuses it).
 */
export abstract class VsockSocket implements Disposable {
  readonly #fd: number;
  readonly #what: string;
  #closed = false;

  /** @internal */
  constructor(fd: number, what: string) {
    this.#fd = fd;
    this.#what = what;
  }

  /** The address errors name; each kind of socket says which. */
  protected abstract get errorAddress(): VsockAddr | HybridAddr | undefined;

  /** The socket's file descriptor (see the class comment for who closes it). */
  get fd(): number {
    return this.#fd;
  }

  /** `true` once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Throws the `EBADF` error for using a closed socket. */
  protected assertOpen(syscall: string): void {
    if (this.#closed) throw closedError(syscall, this.#what, this.errorAddress);
  }

  /** Marks the socket closed; `true` only the first time, so the fd is released once. */
  protected markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** Closes the socket. A second call does nothing. */
  abstract close(): void;

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #get<
    K extends
      | "bufferSize"
      | "bufferMinSize"
      | "bufferMaxSize"
      | "connectTimeout"
      | "receiveBufferSize"
      | "sendBufferSize",
  >(name: K): number {
    this.assertOpen("getsockopt");
    return getOption(this.#fd, name);
  }

  #set(
    name: "bufferSize" | "bufferMinSize" | "bufferMaxSize" | "connectTimeout" | "receiveBufferSize" | "sendBufferSize",
    value: number,
  ): void {
    this.assertOpen("setsockopt");
    setOption(this.#fd, name, value);
  }

  /** `SO_VM_SOCKETS_BUFFER_SIZE`: this socket's receive window in bytes; the kernel clamps it into [min, max]. */
  get bufferSize(): number {
    return this.#get("bufferSize");
  }
  set bufferSize(value: number) {
    this.#set("bufferSize", value);
  }

  /** `SO_VM_SOCKETS_BUFFER_MIN_SIZE` in bytes. */
  get bufferMinSize(): number {
    return this.#get("bufferMinSize");
  }
  set bufferMinSize(value: number) {
    this.#set("bufferMinSize", value);
  }

  /** `SO_VM_SOCKETS_BUFFER_MAX_SIZE` in bytes. */
  get bufferMaxSize(): number {
    return this.#get("bufferMaxSize");
  }
  set bufferMaxSize(value: number) {
    this.#set("bufferMaxSize", value);
  }

  /** `SO_VM_SOCKETS_CONNECT_TIMEOUT` in milliseconds (inherited by accepted sockets; 0 restores 2000). */
  get connectTimeout(): number {
    return this.#get("connectTimeout");
  }
  set connectTimeout(value: number) {
    this.#set("connectTimeout", value);
  }

  /** `SO_RCVBUF` in bytes (stored by the kernel; vsock flow control uses `bufferSize`). */
  get receiveBufferSize(): number {
    return this.#get("receiveBufferSize");
  }
  set receiveBufferSize(value: number) {
    this.#set("receiveBufferSize", value);
  }

  /** `SO_SNDBUF` in bytes (stored by the kernel; sends are limited by the peer's `bufferSize`). */
  get sendBufferSize(): number {
    return this.#get("sendBufferSize");
  }
  set sendBufferSize(value: number) {
    this.#set("sendBufferSize", value);
  }

  /** `SO_KEEPALIVE` (stored by the kernel; the vsock transports send no probes). */
  get keepAlive(): boolean {
    this.assertOpen("getsockopt");
    return getOption(this.#fd, "keepAlive");
  }
  set keepAlive(value: boolean) {
    this.assertOpen("setsockopt");
    setOption(this.#fd, "keepAlive", value);
  }
}
