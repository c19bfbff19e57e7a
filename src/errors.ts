/**
 * The library's one error type and the errno vocabulary behind it.
 *
 * @module
 */
import type { VsockAddr } from "./addr.ts";
import type { HybridAddr } from "./hybrid/addr.ts";
import { EBADF } from "./errno.ts";

/** errno names and what they mean for a vsock user, by number (Linux). */
const ERRNO: Record<number, readonly [name: string, meaning: string]> = {
  1: ["EPERM", "operation not permitted"],
  2: ["ENOENT", "no such file"],
  4: ["EINTR", "interrupted"],
  5: ["EIO", "I/O error"],
  9: ["EBADF", "the socket is closed"],
  11: ["EAGAIN", "would block"],
  12: ["ENOMEM", "out of memory"],
  13: ["EACCES", "permission denied"],
  19: ["ENODEV", "no vsock transport on this machine"],
  22: ["EINVAL", "invalid argument"],
  23: ["ENFILE", "too many open files in the system"],
  24: ["EMFILE", "too many open files in this process"],
  25: ["ENOTTY", "not a vsock device"],
  32: ["EPIPE", "the connection is closed for writing"],
  71: ["EPROTO", "protocol error"],
  88: ["ENOTSOCK", "not a socket"],
  90: ["EMSGSIZE", "message too long"],
  92: ["ENOPROTOOPT", "option not supported by this socket"],
  93: ["EPROTONOSUPPORT", "protocol not supported"],
  94: ["ESOCKTNOSUPPORT", "socket type not supported by the vsock transport"],
  95: ["EOPNOTSUPP", "operation not supported by the vsock transport"],
  97: ["EAFNOSUPPORT", "AF_VSOCK is not supported by this kernel"],
  98: ["EADDRINUSE", "the address is already in use"],
  99: ["EADDRNOTAVAIL", "the address is not available here"],
  101: ["ENETUNREACH", "no transport reaches that CID"],
  103: ["ECONNABORTED", "connection aborted"],
  104: ["ECONNRESET", "connection reset"],
  105: ["ENOBUFS", "no buffer space"],
  106: ["EISCONN", "already connected"],
  107: ["ENOTCONN", "not connected"],
  110: ["ETIMEDOUT", "timed out"],
  111: ["ECONNREFUSED", "connection refused"],
  113: ["EHOSTUNREACH", "no route to that CID"],
  114: ["EALREADY", "a connect is already in progress"],
  115: ["EINPROGRESS", "in progress"],
};

/** The symbolic name of an errno number, e.g. `104` → `"ECONNRESET"`. */
export function errnoName(errno: number): string {
  return ERRNO[errno]?.[0] ?? `E${errno}`;
}

/** Extra words for the cases people hit first. */
function hint(code: string, syscall: string): string {
  if (code === "ECONNRESET" && syscall === "connect") return " — nothing is listening on that port";
  if (code === "ENODEV" || (code === "EAFNOSUPPORT" && syscall === "socket")) {
    return " — load a transport: vsock_loopback for CID 1, virtio/vmw/hv for a VM";
  }
  if (code === "ENOENT" && syscall === "open") return " — /dev/vsock is missing: the vsock module is not loaded";
  if (code === "EADDRINUSE") return " — another socket is bound to that port";
  if (code === "ESOCKTNOSUPPORT") {
    return " — SOCK_SEQPACKET needs Linux 5.14+ and a transport that has it (virtio, loopback; not VMCI or Hyper-V)";
  }
  return "";
}

/** Options for {@link VsockError}. */
export interface VsockErrorOptions {
  /** The errno number, `0` for errors the library raises itself (e.g. a timeout). */
  errno: number;
  /** The libc call or operation that failed, e.g. `"connect"`. */
  syscall: string;
  /** The address involved, when there is one. */
  address?: VsockAddr | HybridAddr;
  /** Override the errno-derived code (e.g. `"ETIMEDOUT"` for a timeout we raise). */
  code?: string;
  /** Override the message. */
  message?: string;
  cause?: unknown;
}

/**
 * Any failure of a vsock call. `code` is the errno name (`"ECONNRESET"`), so
 * handlers can switch on it as they would on Node's or Deno's errors.
 *
 * @example
 * ```ts
 * try {
 *   await connect({ cid: 1, port: 9 });
 * } catch (e) {
 *   if (e instanceof VsockError && e.code === "ECONNRESET") console.log("nobody there");
 * }
 * ```
 */
export class VsockError extends Error {
  /** The errno name, e.g. `"EADDRINUSE"`. */
  readonly code: string;
  /** The errno number (0 when the library itself raised it). */
  readonly errno: number;
  /** The call that failed, e.g. `"bind"`. */
  readonly syscall: string;
  /** The address involved, if any: a `VsockAddr`, or a `HybridAddr` for hybrid vsock. */
  readonly address: VsockAddr | HybridAddr | undefined;

  constructor(options: VsockErrorOptions) {
    const code = options.code ?? errnoName(options.errno);
    const meaning = ERRNO[options.errno]?.[1] ?? `errno ${options.errno}`;
    const where = options.address ? ` ${options.address.toString()}` : "";
    const message = options.message ??
      `${options.syscall}${where} failed: ${meaning}${hint(code, options.syscall)} (${code})`;
    super(message, { cause: options.cause });
    this.name = "VsockError";
    this.code = code;
    this.errno = options.errno;
    this.syscall = options.syscall;
    this.address = options.address;
  }
}

/** Throws a {@link VsockError} when a libc result is `-errno`; returns it otherwise. */
export function check(result: number, syscall: string, address?: VsockAddr | HybridAddr): number {
  if (result < 0) throw new VsockError({ errno: -result, syscall, address });
  return result;
}

/** The error for using a socket after `close()`. */
export function closedError(syscall: string, what: string, address?: VsockAddr | HybridAddr): VsockError {
  return new VsockError({
    errno: EBADF,
    syscall,
    address,
    message: `${syscall} on a closed vsock ${what}${address ? ` (${address.toString()})` : ""} (EBADF)`,
  });
}

/**
 * Error codes that mean "the connection (or the path to the peer) is gone:
 * reconnect". vsock(7): live migration breaks connected streams and may change
 * the local CID, and a restarted peer resets connections. Re-read
 * `localCid()` after reconnecting if you report it.
 */
export const RECONNECT_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET", // the peer closed or restarted; nothing listening (yet)
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE", // writing after the connection broke
  "ENOTCONN",
  "ESHUTDOWN",
  "ETIMEDOUT", // the peer did not answer the connect in time
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENODEV", // the transport went away (e.g. during migration)
]);

/**
 * Whether `error` means "reconnect and try again" (see {@link RECONNECT_CODES}).
 *
 * @example
 * ```ts
 * try { await conn.write(data); } catch (e) { if (shouldReconnect(e)) conn = await connect(addr); else throw e; }
 * ```
 */
export function shouldReconnect(error: unknown): boolean {
  return error instanceof VsockError && RECONNECT_CODES.has(error.code);
}
