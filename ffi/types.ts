/**
 * The one interface every runtime adapter implements. Code outside `ffi/`
 * sees only these types, never a runtime.
 *
 * @module
 */
import type { Socket } from "node:net";

/**
 * Thin, synchronous libc calls. Each returns the call's result when it is
 * non-negative and `-errno` when it failed. The adapter reads errno through a
 * typed array over the calling thread's errno, as an argument of its check,
 * so the read is a memory load right after the call with no function entered
 * in between: a JS engine may run its own code (a collection, installing
 * compiled code) at a function's entry, and libc calls there can set errno.
 * The call and the read are still two steps, so callers whose outcome the
 * socket can be asked for again ask once more before they report a failure
 * (connect() in src/connect.ts, accept's acceptOnce in src/socket.ts).
 * Buffers are passed as typed arrays and only used for the duration of the call.
 */
export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array): number;
  connect(fd: number, addr: Uint8Array): number;
  listen(fd: number, backlog: number): number;
  /** `addr` receives the peer address, `addrLen` holds its capacity in and length out. */
  accept4(fd: number, addr: Uint8Array, addrLen: Uint32Array, flags: number): number;
  getsockname(fd: number, addr: Uint8Array, addrLen: Uint32Array): number;
  getpeername(fd: number, addr: Uint8Array, addrLen: Uint32Array): number;
  getsockopt(fd: number, level: number, name: number, value: Uint8Array, valueLen: Uint32Array): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array): number;
  shutdown(fd: number, how: number): number;
  close(fd: number): number;
  recv(fd: number, buf: Uint8Array, flags: number): number;
  send(fd: number, buf: Uint8Array, flags: number): number;
  sendto(fd: number, buf: Uint8Array, flags: number, addr: Uint8Array): number;
  /** `addr` receives the sender, `addrLen` holds its capacity in and length out. */
  recvfrom(fd: number, buf: Uint8Array, flags: number, addr: Uint8Array, addrLen: Uint32Array): number;
  read(fd: number, buf: Uint8Array): number;
  write(fd: number, buf: Uint8Array): number;
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  /** `path` is NUL-terminated. */
  open(path: Uint8Array, flags: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array): number;
  eventfd(initval: number, flags: number): number;
}

/**
 * One `epoll_wait` at a time, made so the event loop keeps turning: off the
 * JS thread (Bun, Deno), or without blocking once Node's own loop reports the
 * epoll fd readable. `events` is where the kernel's `epoll_event`s land; it
 * belongs to the waiter and stays alive as long as the waiter does.
 */
export interface EpollWaiter {
  readonly events: Uint8Array;
  /** Waits without a time limit; resolves with the event count, or `-errno`. */
  wait(): Promise<number>;
  /**
   * Whether a wait keeps the process alive: `true` until said otherwise. The
   * reactor says `false` while everyone parked is a read on an unref'd
   * connection, so the wait watches without holding the process; it may say
   * so while a wait is in flight, and that wait follows.
   */
  hold(on: boolean): void;
}

/**
 * A connected stream socket driven by the runtime's own event loop. Only a
 * runtime that can adopt a foreign fd offers one (Bun does; Deno cannot).
 * After adoption the runtime owns the fd and closes it.
 */
export interface StreamIO {
  /** Reads into `into`; resolves with the byte count, or `null` at end of stream or after `close()`. */
  read(into: Uint8Array): Promise<number | null>;
  /** Writes a prefix of `from`; resolves with how much (at least 1 byte when `from` is not empty). */
  write(from: Uint8Array): Promise<number>;
  /** Sends end-of-stream to the peer; reading goes on. */
  closeWrite(): void;
  /** Bytes already taken from the kernel and not yet read (a runtime's adopted socket queues them); 0 where reads go to the kernel. */
  readonly queued: number;
  /** Closes at once; pending reads resolve `null`, pending writes reject. Idempotent. */
  close(): void;
  /** Whether a pending read keeps the process alive (`true` until said otherwise); pending writes always do. */
  holdReads(on: boolean): void;
}

/** A stream adopted while its connect was under way (`Adapter.adoptConnecting`). */
export interface ConnectingStreamIO extends StreamIO {
  /**
   * Resolves once the connect is done (the socket is writable); rejects with
   * `toError(errno, "connect")` when it fails (errno 0: the runtime saw it
   * fail but not why), or with `signal.reason` when `signal` aborts, and the
   * stream is closed then.
   */
  connected(signal?: AbortSignal): Promise<void>;
}

/** Builds the library's typed error for a failed call; supplied by `src/` so `ffi/` stays unaware of it. */
export type ErrorFactory = (errno: number, syscall: string) => Error;

/** What the runtime-neutral code needs from a runtime. */
export interface Adapter {
  /** Which runtime this adapter drives; for diagnostics only. */
  readonly runtime: "bun" | "deno" | "node";
  readonly libc: Libc;
  /** `sizeof(struct epoll_event)`: 12 on x86-64 (packed), 16 elsewhere. */
  readonly epollEventSize: number;
  /**
   * Runs one blocking `send(fd, data, MSG_NOSIGNAL)` off the JS thread, for
   * sockets in blocking mode (SEQPACKET: a non-blocking send can queue part of
   * a message and still fail with EAGAIN). Resolves with the byte count, or
   * `-errno`; `-1` where the runtime cannot read errno off-thread (Deno).
   * `data` is kept alive until it settles.
   */
  sendOffThread(fd: number, data: Uint8Array): Promise<number>;
  /** How many `sendOffThread` calls may be in flight at once (Deno's FFI pool has 32 threads in all). */
  readonly maxSendsInFlight: number;
  /** Creates the one waiter for `epfd`, with room for `maxEvents`. */
  createEpollWaiter(epfd: number, maxEvents: number): EpollWaiter;
  /**
   * Hands a connected, non-blocking stream socket to the runtime's event loop,
   * when the runtime can take one; `undefined` when it cannot.
   */
  adoptStream?(fd: number, toError: ErrorFactory): Promise<StreamIO>;
  /**
   * `adoptStream` for a socket whose non-blocking connect is still under way,
   * where the runtime's own loop can tell when it finishes: no reactor
   * registration, no waiter hand-off. Like `adoptStream`, a failed adoption
   * leaves the fd open; from then on the stream owns it.
   */
  adoptConnecting?(fd: number, toError: ErrorFactory): Promise<ConnectingStreamIO>;
  /**
   * Hands a connected, non-blocking stream socket to the runtime's own
   * `node:net`, where it can take a foreign fd, so that its `node:http` server
   * works on the socket directly instead of through a JS `Duplex` over this
   * library's stream. Bun only: Node's libuv calls a vsock fd's handle type
   * UNKNOWN, and Deno's `node:net` takes no fd. The socket owns the fd from
   * then on; if this throws, the fd stays open.
   */
  adoptNetSocket?(fd: number): Socket;
}
