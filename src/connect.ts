/**
 * `connect()`: a non-blocking connect whose completion is read from
 * `SO_ERROR` (not assumed from writability), with abort and timeout.
 *
 * @module
 */
import { VsockAddr } from "./addr.ts";
import { SO_ERROR, VMADDR_PORT_ANY } from "./constants.ts";
import { VsockConn } from "./conn.ts";
import { check, VsockError } from "./errors.ts";
import { applyOptions, getIntOption, type SocketOptions, validateOptions } from "./options.ts";
import type { VsockSeqpacketConn } from "./seqpacket.ts";
import {
  adoptsConnecting,
  getReactor,
  libc,
  openConnectingStream,
  parseType,
  socketAddress,
  type SocketType,
  vsockSocket,
} from "./socket.ts";
import { checkBusyPoll } from "./polled_stream.ts";
import { unwatch } from "./reactor.ts";
import { wrapConnected } from "./wrap.ts";
import { type HybridAddr, isHybridString } from "./hybrid/addr.ts";
import { connectHybrid, type HybridConnectOptions } from "./hybrid/connect.ts";
import { EALREADY, ECONNRESET, EINPROGRESS, EINTR, EISCONN, ENOTCONN, ETIMEDOUT } from "./errno.ts";

/** Options for {@link connect}. */
export interface ConnectOptions extends SocketOptions {
  /** The peer's context id, e.g. `VMADDR_CID_HOST` (2) from a guest, `VMADDR_CID_LOCAL` (1) for loopback. */
  cid: number;
  /** The peer's port. */
  port: number;
  /** Set `VMADDR_FLAG_TO_HOST`: a nested hypervisor forwards the connection to its host. */
  toHost?: boolean;
  /** Aborting closes the socket and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Milliseconds before giving up with `ETIMEDOUT`. The kernel's own limit (2 s by default) applies too. */
  timeout?: number;
  /** `"stream"` (default) or `"seqpacket"` for a message connection. */
  type?: SocketType;
  /**
   * Busy-poll window in microseconds (default 0: off). After this connection
   * sends, a read that finds nothing retries `recv` on the JS thread for up to
   * this long before it parks, once per send. On Deno and Node a park is a
   * hand-off to a waiter thread and back (~340 µs in the test VM), so for
   * request/response traffic with a fast peer a window of 200-1,000 µs cuts
   * the round trip (measured: Deno ping-pong 2.6 ms -> 1.1 ms, below Deno's
   * own vsock). A write that finds the send window full spins the same way
   * before it parks (measured: Deno streaming 10-24 % faster with 500 µs,
   * near Deno's own vsock). The price: the event loop runs nothing else
   * during the window, and a miss costs the whole window. Stream connections on
   * Deno and Node only; Bun's own event loop drives its streams, so there it has
   * no effect.
   */
  busyPoll?: number;
  /** Only for hybrid vsock ({@link HybridConnectOptions}). */
  uds?: never;
}

/** A hybrid vsock address string: `unix:///path/to/v.sock?port=N`. */
export type HybridAddrString = `unix:${string}`;

/**
 * Everything `connect()` accepts for a byte stream: `AF_VSOCK` options, hybrid
 * vsock options, or an address string of either kind. For code that passes
 * its caller's target on (an HTTP client, a pool).
 */
export type StreamConnectTarget = (ConnectOptions & { type?: "stream" }) | HybridConnectOptions | string;

interface Parsed {
  address: VsockAddr;
  type: SocketType;
  busyPoll: number;
  signal?: AbortSignal;
  timeout?: number;
  options: SocketOptions;
}

function parseOptions(options: ConnectOptions | string): Parsed {
  if (typeof options === "string") {
    return { address: VsockAddr.parse(options), type: "stream", busyPoll: 0, options: {} };
  }
  if (options === null || typeof options !== "object") {
    throw new TypeError("connect() takes an options object or a vsock address string");
  }
  const { timeout, signal } = options;
  const busyPoll = checkBusyPoll(options.busyPoll);
  if (timeout !== undefined && !(typeof timeout === "number" && timeout >= 0 && Number.isFinite(timeout))) {
    throw new RangeError(`connect() timeout must be a non-negative number of milliseconds, got ${String(timeout)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("connect() signal must be an AbortSignal");
  }
  validateOptions(options);
  return {
    address: new VsockAddr(options.cid, options.port, options.toHost ?? false),
    type: parseType(options.type),
    busyPoll,
    signal,
    timeout,
    options,
  };
}

/**
 * connect() on a socket whose connect already started, mapped to what the
 * first call would have said: 0 connected (`EISCONN`), `-EINPROGRESS` still
 * under way (`EALREADY`, or a connect that had not started and now has), or
 * the error. On a failed socket it repeats the failure, or (after an error
 * that arrived meanwhile) reports it.
 */
function connectAgain(fd: number, sockaddr: Uint8Array): number {
  let r = libc.connect(fd, sockaddr);
  while (r === -EINTR) r = libc.connect(fd, sockaddr);
  return r === -EISCONN ? 0 : r === -EALREADY ? -EINPROGRESS : r;
}

/** The error of a connect that `timeout` cut short. */
function timedOut(address: VsockAddr, timeout: number): VsockError {
  return new VsockError({
    errno: ETIMEDOUT,
    syscall: "connect",
    address,
    message: `connect to ${address.toString()} timed out after ${timeout} ms (ETIMEDOUT)`,
  });
}

/**
 * Calls `cancel` with the reason when `signal` aborts or `timeout` ms pass
 * (the error of {@link timedOut}), whichever comes first (the other may
 * follow: the first reason must win); the function it returns stops
 * watching. Both connect waits use it.
 */
function cancelOn(
  address: VsockAddr,
  signal: AbortSignal | undefined,
  timeout: number | undefined,
  cancel: (reason: unknown) => void,
): () => void {
  const onAbort = (): void => cancel(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer = timeout === undefined ? undefined : setTimeout(() => cancel(timedOut(address, timeout)), timeout);
  return (): void => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  };
}

/**
 * Finishes an in-progress stream connect in the runtime's own loop (where
 * `adoptsConnecting`): the fd is adopted at once and the loop reports the
 * outcome, so there is no reactor registration and no waiter hand-off. Owns
 * `fd` from the call on.
 */
async function finishAdopted(
  fd: number,
  address: VsockAddr,
  kernelTimeout: number,
  signal?: AbortSignal,
  timeout?: number,
): Promise<VsockConn> {
  const started = performance.now(); // ms, just after connect() started it: the kernel's timer counts from there
  const toError = (errno: number, syscall: string): VsockError => {
    if (syscall !== "connect") return new VsockError({ errno, syscall });
    // errno 0: the runtime saw the connect fail, not why. A vsock connect
    // fails later than it started for two reasons only: a reset (nothing
    // listens, a full accept queue) within milliseconds, or the kernel's
    // connect timer (`connectTimeout`).
    if (errno === 0) errno = performance.now() - started >= kernelTimeout ? ETIMEDOUT : ECONNRESET;
    return new VsockError({ errno, syscall, address });
  };
  const io = await openConnectingStream(fd, toError);
  // Only a connect that can be cancelled pays for a controller.
  const cancel = signal !== undefined || timeout !== undefined ? new AbortController() : undefined;
  const stop = cancel && cancelOn(address, signal, timeout, (reason) => cancel.abort(reason));
  if (signal?.aborted) cancel?.abort(signal.reason); // it may have, while the stream was opened
  try {
    await io.connected(cancel?.signal); // on failure the stream is closed, and the fd with it
  } finally {
    stop?.();
  }
  try {
    // Bun's first drain means writable without an error (uSockets calls it
    // only without EPOLLERR, which a failed or timed-out connect raises), and
    // a socket whose connect never started (errno misread twice) is writable
    // too. connect() binds a local port before it starts: a bound port here
    // means started, hence connected, so this end's address is the check.
    const local = socketAddress(fd, "getsockname");
    if (local.port === VMADDR_PORT_ANY) {
      throw new VsockError({
        errno: ENOTCONN,
        syscall: "connect",
        address,
        message: `connect to ${address.toString()} never started: the socket is not connected (ENOTCONN)`,
      });
    }
    return new VsockConn(io, fd, local, address);
  } catch (error) {
    io.close();
    throw error;
  }
}

/**
 * Waits for an in-progress connect on `fd` to finish; rejects on error, abort
 * or timeout. On success `fd` stays registered with the reactor (the
 * connection's reads and writes park there next; openStream drops it for
 * runtimes that adopt the fd), on failure not.
 */
async function finishConnect(
  fd: number,
  address: VsockAddr,
  sockaddr: Uint8Array,
  signal?: AbortSignal,
  timeout?: number,
): Promise<void> {
  const loop = getReactor();
  loop.register(fd);
  let cancelled: unknown = undefined;
  const stop = cancelOn(address, signal, timeout, (reason) => {
    cancelled ??= reason;
    loop.unregister(fd); // wakes the wait below
  });
  try {
    for (;;) {
      await loop.wait(fd, "write");
      if (cancelled !== undefined) throw cancelled;
      // The connect's outcome is SO_ERROR, not writability.
      const error = getIntOption(fd, SO_ERROR, "SO_ERROR");
      if (error !== 0) throw new VsockError({ errno: error, syscall: "connect", address });
      // Writable and no error: connected, a wake-up with nothing to say, or a
      // socket whose connect never started (an unconnected vsock socket polls
      // writable, so waiting again would spin). connect() again says which
      // (and starts one that never started).
      const r = connectAgain(fd, sockaddr);
      if (r === 0) return;
      if (r !== -EINPROGRESS) throw new VsockError({ errno: -r, syscall: "connect", address });
    }
  } catch (error) {
    loop.unregister(fd);
    throw error;
  } finally {
    stop();
  }
}

/**
 * Connects to a vsock listener: a stream (`VsockConn`), or with
 * `type: "seqpacket"` a message connection (`VsockSeqpacketConn`). Accepts
 * options or an address string (`"vsock://1:5000"`, `"host:1024"`). Socket
 * options (`bufferSize`, `connectTimeout`, ...) are set before connecting.
 *
 * With `{ uds, port }` or `"unix:///run/vm1/v.sock?port=52"` it dials a guest
 * port through a Firecracker / Cloud Hypervisor / vhost-device-vsock VMM's
 * vsock Unix socket (hybrid vsock, see {@link HybridConnectOptions}) and
 * resolves with a `VsockConn<HybridAddr>`.
 *
 * Rejects with a `VsockError`: `ECONNRESET` when nothing listens on that
 * port, `ETIMEDOUT` on timeout, `ENODEV`/`ENETUNREACH` when no transport
 * reaches the CID. An aborted `signal` rejects with its reason. Hybrid adds
 * `EPROTO` (the VMM answered something else than `OK`) and the Unix socket's
 * own `ENOENT`/`ECONNREFUSED`.
 *
 * @example
 * ```ts
 * const conn = await connect({ cid: VMADDR_CID_HOST, port: 1024, timeout: 1000 });
 * const guest = await connect({ uds: "/run/vm1/v.sock", port: 52 });
 * ```
 */
export function connect(options: HybridConnectOptions | HybridAddrString): Promise<VsockConn<HybridAddr>>;
export function connect(options: ConnectOptions & { type: "seqpacket" }): Promise<VsockSeqpacketConn>;
export function connect(options: (ConnectOptions & { type?: "stream" }) | `vsock://${string}`): Promise<VsockConn>;
export function connect(options: StreamConnectTarget): Promise<VsockConn<VsockAddr | HybridAddr>>;
export function connect(
  options: ConnectOptions | HybridConnectOptions | string,
): Promise<VsockConn<VsockAddr | HybridAddr> | VsockSeqpacketConn> {
  // Not async itself: both are, so a bad argument still rejects, and a connect awaits one frame less.
  if (isHybridTarget(options)) return connectHybrid(options);
  return connectVsock(options as ConnectOptions | string);
}

/** `true` when `connect()` would dial `target` through a VMM's Unix socket (hybrid vsock). */
export function isHybridTarget(target: unknown): target is HybridConnectOptions | HybridAddrString {
  return typeof target === "string"
    ? isHybridString(target)
    : typeof target === "object" && target !== null && "uds" in target;
}

/** A socket whose connect has started: where it stands (0 connected, `-EINPROGRESS` under way). */
interface Started {
  fd: number;
  sockaddr: Uint8Array;
  result: number;
}

/** Makes the socket, sets its options and starts the connect; on failure the fd is closed and a `VsockError` thrown. */
function startConnect({ address, type, options }: Parsed): Started {
  const fd = vsockSocket(type, address);
  try {
    applyOptions(fd, options);
    const sockaddr = address.toBytes();
    let r = libc.connect(fd, sockaddr);
    // Whatever it said (EINTR included), connect() is asked once more, which
    // tells where the socket stands: EISCONN done, EALREADY under way, or the
    // failure again. Loopback-like transports often finish the handshake by
    // then, which saves the wait. And errno is read after the call returns
    // (ffi/types.ts): twice in the test VM, with 200 connects under way on
    // Deno, it read as something a non-blocking connect never gives (EAGAIN
    // once, ENOENT once), and a connect reported under way that never started
    // would otherwise be waited on (an unconnected socket polls writable).
    if (r !== 0) r = connectAgain(fd, sockaddr);
    if (r !== -EINPROGRESS) check(r, "connect", address);
    return { fd, sockaddr, result: r };
  } catch (error) {
    libc.close(fd);
    throw error;
  }
}

/**
 * Waits through the reactor for a connect under way (none if it is done) and
 * returns this end's address. On success the fd may still be registered with
 * the reactor (the connection's reads and writes park there next); on failure
 * it is unregistered and closed.
 */
async function finishReactor(parsed: Parsed, { fd, sockaddr, result }: Started): Promise<VsockAddr> {
  try {
    if (result === -EINPROGRESS) await finishConnect(fd, parsed.address, sockaddr, parsed.signal, parsed.timeout);
    // The peer is the address connected to (the kernel keeps a copy of it for
    // getpeername), so only this end's auto-bound port is asked for.
    return socketAddress(fd, "getsockname");
  } catch (error) {
    unwatch(fd);
    libc.close(fd);
    throw error;
  }
}

async function connectVsock(options: ConnectOptions | string): Promise<VsockConn | VsockSeqpacketConn> {
  const parsed = parseOptions(options);
  parsed.signal?.throwIfAborted();
  const started = startConnect(parsed);
  const { fd } = started;
  // Under way, a stream is handed to the runtime's loop where it can take one.
  if (started.result === -EINPROGRESS && parsed.type === "stream" && adoptsConnecting) {
    // The kernel's own connect timer: connectTimeout, where 0 means its default of 2 s.
    const kernelTimeout = parsed.options.connectTimeout || 2000;
    return await finishAdopted(fd, parsed.address, kernelTimeout, parsed.signal, parsed.timeout);
  }
  const local = await finishReactor(parsed, started);
  // The connection owns the fd from here; it closes it if it fails.
  return await wrapConnected(fd, parsed.type, local, parsed.address, parsed.busyPoll);
}

/**
 * `connect()` for a stream, up to the connected fd: the same checks, socket
 * options, typed errors, abort and timeout, but a connect still under way is
 * waited for through the reactor (never handed to the runtime's loop), and the
 * fd is left to the caller, who closes it. For code that hands a connected fd
 * to something else: the HTTP client's pool on Bun (src/http/dial.ts).
 */
export async function connectFd(options: ConnectOptions | string): Promise<number> {
  const parsed = parseOptions(options);
  if (parsed.type !== "stream") throw new TypeError("connectFd() connects streams only");
  parsed.signal?.throwIfAborted();
  const started = startConnect(parsed);
  await finishReactor(parsed, started); // its local address goes unused: one getsockname per pooled connection
  unwatch(started.fd); // the new owner's loop watches it from now on
  return started.fd;
}
