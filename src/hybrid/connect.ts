/**
 * `connect()` to a guest port through a VMM's vsock Unix socket: Unix
 * connect, the `CONNECT`/`OK` handshake (handshake.ts) with its own time
 * limit, optional retries for a guest that is not listening yet, then the
 * same `VsockConn` (and stream machinery) as an `AF_VSOCK` connection.
 *
 * @module
 */
import { SOCKET_OPTION_NAMES } from "../options.ts";
import { SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, VMADDR_PORT_ANY } from "../constants.ts";
import { VsockConn } from "../conn.ts";
import { VsockError } from "../errors.ts";
import { checkBusyPoll } from "../polled_stream.ts";
import { getReactor, libc, openStream } from "../socket.ts";
import { AF_UNIX, HybridAddr } from "./addr.ts";
import { readReply, sendRequest } from "./handshake.ts";
import { EAGAIN, ECONNRESET, EINPROGRESS, EINTR, ETIMEDOUT } from "../errno.ts";

/** Default {@link HybridConnectOptions.handshakeTimeout}: 1 s, as firecracker-go-sdk's `vsock.Dial`. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 1000;
/** First pause between retries; it doubles up to {@link MAX_RETRY_DELAY}. */
const FIRST_RETRY_DELAY = 100;
const MAX_RETRY_DELAY = 1000;
/** Pauses while the VMM's accept queue is full (a non-blocking Unix connect says `EAGAIN` and must be redone). */
const BACKLOG_DELAYS = [1, 2, 5, 10, 20, 50];

/**
 * Options for `connect()` to a Firecracker / Cloud Hypervisor /
 * vhost-device-vsock guest through the VMM's vsock Unix socket.
 */
export interface HybridConnectOptions {
  /** The VMM's vsock Unix socket (`uds_path` in Firecracker). A relative path is resolved now. */
  uds: string;
  /** The guest port to dial. */
  port: number;
  /**
   * Milliseconds each attempt may take from the Unix connect to the VMM's
   * `OK` (the VMM itself never gives up). Default 1000. Exceeding it rejects
   * with `ETIMEDOUT`, or retries (see `retries`).
   */
  handshakeTimeout?: number;
  /**
   * Extra attempts after a handshake the VMM hung up on (`ECONNRESET`: the
   * guest port is not listening, e.g. the agent is still booting) or that
   * timed out; pauses 100 ms, doubling to 1 s, between them. Default 0: fail
   * at once. Errors reaching the Unix socket itself (`ENOENT`,
   * `ECONNREFUSED`) and `EPROTO` are not retried.
   */
  retries?: number;
  /** Aborting closes the socket and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Milliseconds for the whole connect, retries included, before `ETIMEDOUT`. */
  timeout?: number;
  /** Busy-poll window in µs, as `connect()`'s `busyPoll` for `AF_VSOCK` (Deno and Node; default 0: off). */
  busyPoll?: number;
  /** Hybrid vsock carries byte streams only. */
  type?: "stream";
  /** Not for hybrid addresses: the VMM's socket path (`uds`) says which VM. */
  cid?: never;
}

/** Keys of `connect()`'s `AF_VSOCK` options that mean nothing on a VMM's Unix socket. */
const VSOCK_ONLY = ["cid", "toHost", ...SOCKET_OPTION_NAMES] as const;

interface Parsed {
  address: HybridAddr;
  busyPoll: number;
  handshakeTimeout: number;
  retries: number;
  signal?: AbortSignal;
  timeout?: number;
}

function milliseconds(value: unknown, name: string, positive: boolean): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (positive && value === 0)) {
    throw new RangeError(
      `connect() ${name} must be a ${positive ? "positive" : "non-negative"} number of milliseconds, got ${
        String(value)
      }`,
    );
  }
  return value;
}

/** Validates hybrid `connect()` input before any socket exists. */
export function parseHybridConnect(options: HybridConnectOptions | string): Parsed {
  if (typeof options === "string") {
    return {
      address: checkedPort(HybridAddr.parse(options)),
      busyPoll: 0,
      handshakeTimeout: DEFAULT_HANDSHAKE_TIMEOUT,
      retries: 0,
    };
  }
  const record = options as unknown as Record<string, unknown>;
  for (const key of VSOCK_ONLY) {
    if (record[key] !== undefined) {
      throw new TypeError(
        `connect() option "${key}" does not apply to hybrid vsock (uds): the VMM owns the vsock side`,
      );
    }
  }
  if (record.type !== undefined && record.type !== "stream") {
    throw new TypeError(`hybrid vsock carries streams only; type must be "stream", got ${String(record.type)}`);
  }
  const { retries = 0, signal } = options;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new RangeError(`connect() retries must be a non-negative integer, got ${String(retries)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("connect() signal must be an AbortSignal");
  }
  return {
    address: checkedPort(new HybridAddr(options.uds, options.port)),
    busyPoll: checkBusyPoll(options.busyPoll),
    handshakeTimeout: milliseconds(options.handshakeTimeout, "handshakeTimeout", true) ?? DEFAULT_HANDSHAKE_TIMEOUT,
    retries,
    signal,
    timeout: milliseconds(options.timeout, "timeout", false),
  };
}

function checkedPort(address: HybridAddr): HybridAddr {
  if (address.port === VMADDR_PORT_ANY) {
    throw new RangeError(`hybrid vsock connect needs a guest port, not VMADDR_PORT_ANY (${address.toString()})`);
  }
  return address;
}

/** A new non-blocking, close-on-exec Unix stream socket. */
export function unixSocket(address: HybridAddr): number {
  const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new VsockError({ errno: -fd, syscall: "socket", address });
  return fd;
}

/** The error for a Unix connect the kernel refused, naming the path and what it usually means. */
function unixConnectError(errno: number, address: HybridAddr): VsockError {
  const why: Record<number, string> = {
    2: `${address.path} does not exist: is the VM running, and is this its vsock socket (uds_path)?`,
    111: `nothing accepts connections on ${address.path}: the VMM is not running (a stale socket file), ` +
      `or it is not a socket`,
    88: `${address.path} is not a socket`,
    13: `no permission to connect to ${address.path}`,
  };
  const error = new VsockError({ errno, syscall: "connect", address });
  const reason = why[errno];
  return reason === undefined ? error : new VsockError({
    errno,
    syscall: "connect",
    address,
    message: `hybrid vsock connect to ${address.toString()} failed: ${reason} (${error.code})`,
  });
}

/** A pause that ends early (resolving) when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** The Unix connect: immediate for a listening socket, `EAGAIN` (redo later) while its accept queue is full. */
async function unixConnect(fd: number, address: HybridAddr, signal: AbortSignal): Promise<void> {
  const sockaddr = address.toBytes();
  for (let tries = 0;; tries++) {
    const r = libc.connect(fd, sockaddr);
    if (r === 0) return;
    if (r === -EINPROGRESS) {
      await getReactor().wait(fd, "write");
      signal.throwIfAborted();
      return; // a failure shows up as the handshake's send or recv error
    }
    if (r === -EAGAIN) {
      await pause(BACKLOG_DELAYS[Math.min(tries, BACKLOG_DELAYS.length - 1)], signal);
      signal.throwIfAborted();
    } else if (r !== -EINTR) throw unixConnectError(-r, address);
  }
}

/** One attempt: socket, connect, handshake; the fd on success, registered with the reactor. */
async function attempt(address: HybridAddr, handshakeTimeout: number, outer: AbortSignal): Promise<[number, number]> {
  const fd = unixSocket(address);
  const loop = getReactor();
  const control = new AbortController();
  const cancel = (reason: unknown): void => {
    if (control.signal.aborted) return;
    control.abort(reason);
    loop.unregister(fd); // wakes whatever waits on fd
  };
  const onOuter = (): void => cancel(outer.reason);
  outer.addEventListener("abort", onOuter, { once: true });
  const timer = setTimeout(
    () =>
      cancel(
        new VsockError({
          errno: ETIMEDOUT,
          syscall: "connect",
          address,
          message:
            `hybrid vsock connect to ${address.toString()}: no "OK" from the VMM within ${handshakeTimeout} ms ` +
            `(the guest may not be listening on port ${address.port} yet, or the VMM is stuck) (ETIMEDOUT)`,
        }),
      ),
    handshakeTimeout,
  );
  const cancelled = (): unknown => (control.signal.aborted ? control.signal.reason : undefined);
  try {
    loop.register(fd);
    await unixConnect(fd, address, control.signal);
    await sendRequest(fd, address, cancelled);
    const hostPort = await readReply(fd, address, cancelled);
    // Cancelled while the last read was finishing: the fd is no longer registered, so do not hand it on.
    control.signal.throwIfAborted();
    return [fd, hostPort];
  } catch (error) {
    loop.unregister(fd);
    libc.close(fd);
    throw control.signal.aborted ? control.signal.reason : error;
  } finally {
    clearTimeout(timer);
    outer.removeEventListener("abort", onOuter);
  }
}

function retryable(error: unknown): boolean {
  return error instanceof VsockError && (error.errno === ECONNRESET || error.errno === ETIMEDOUT);
}

/** See `connect()`: the hybrid vsock branch. */
export async function connectHybrid(options: HybridConnectOptions | string): Promise<VsockConn<HybridAddr>> {
  const { address, busyPoll, handshakeTimeout, retries, signal, timeout } = parseHybridConnect(options);
  signal?.throwIfAborted();
  // One signal for "stop everything": the caller's abort or the overall timeout.
  const control = new AbortController();
  const onAbort = (): void => control.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer = timeout === undefined ? undefined : setTimeout(
    () =>
      control.abort(
        new VsockError({
          errno: ETIMEDOUT,
          syscall: "connect",
          address,
          message: `hybrid vsock connect to ${address.toString()} timed out after ${timeout} ms (ETIMEDOUT)`,
        }),
      ),
    timeout,
  );
  try {
    let delay = FIRST_RETRY_DELAY;
    for (let left = retries;; left--) {
      try {
        const [fd, hostPort] = await attempt(address, handshakeTimeout, control.signal);
        const local = new HybridAddr(address.path, hostPort);
        // The connection owns the fd from here; openStream closes it if it fails.
        return new VsockConn(await openStream(fd, busyPoll), fd, local, address);
      } catch (error) {
        if (control.signal.aborted || left === 0 || !retryable(error)) throw error;
      }
      await pause(delay, control.signal);
      control.signal.throwIfAborted();
      delay = Math.min(delay * 2, MAX_RETRY_DELAY);
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}
