/**
 * Checks on sockets the library did not make (inherited, passed in): that they
 * are AF_VSOCK, of the expected type and state; then makes them non-blocking
 * and close-on-exec like the library's own.
 *
 * @module
 */
import { AF_VSOCK } from "./constants.ts";
import { VsockError } from "./errors.ts";
import { getIntOption } from "./options.ts";
import { libc, type SocketType, sockType } from "./socket.ts";
import { EAFNOSUPPORT, EBADF, ENOTSOCK, EPROTOTYPE } from "./errno.ts";

const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;
const SO_DOMAIN = 39;
const FIONBIO = 0x5421;
const FIOCLEX = 0x5451;

const FAMILIES: Record<number, string> = {
  1: "AF_UNIX",
  2: "AF_INET",
  10: "AF_INET6",
  16: "AF_NETLINK",
  40: "AF_VSOCK",
};
const TYPES: Record<number, string> = { 1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 5: "SOCK_SEQPACKET" };

/** `getIntOption`, with errors that name the fd someone handed us. */
function intOption(fd: number, name: number, what: string): number {
  try {
    return getIntOption(fd, name, what);
  } catch (error) {
    if (!(error instanceof VsockError)) throw error;
    if (error.errno === ENOTSOCK) {
      throw new VsockError({ errno: ENOTSOCK, syscall: "getsockopt", message: `fd ${fd} is not a socket (ENOTSOCK)` });
    }
    throw new VsockError({
      errno: error.errno,
      syscall: `getsockopt(${what})`,
      message: `fd ${fd}: getsockopt(${what}) failed (${
        error.errno === EBADF ? "EBADF: not an open fd" : `errno ${error.errno}`
      })`,
    });
  }
}

/** What an fd is: its family, type and whether it listens. Throws for a non-socket. */
export function inspectFd(fd: number): { family: number; type: number; listening: boolean } {
  return {
    family: intOption(fd, SO_DOMAIN, "SO_DOMAIN"),
    type: intOption(fd, SO_TYPE, "SO_TYPE"),
    listening: intOption(fd, SO_ACCEPTCONN, "SO_ACCEPTCONN") !== 0,
  };
}

/** Throws a clear error unless `fd` is an AF_VSOCK socket of `type`; returns whether it listens. */
export function checkVsockFd(fd: number, type: SocketType | "dgram"): boolean {
  const info = inspectFd(fd);
  if (info.family !== AF_VSOCK) {
    throw new VsockError({
      errno: EAFNOSUPPORT,
      syscall: "adopt",
      code: "EAFNOSUPPORT",
      message: `fd ${fd} is an ${
        FAMILIES[info.family] ?? `address family ${info.family}`
      } socket, not AF_VSOCK (EAFNOSUPPORT)`,
    });
  }
  const want = type === "dgram" ? 2 : sockType(type);
  if (info.type !== want) {
    const hint = info.type === 5 ? ` (pass type: "seqpacket")` : "";
    throw new VsockError({
      errno: EPROTOTYPE,
      syscall: "adopt",
      code: "EPROTOTYPE",
      message: `fd ${fd} is a ${TYPES[info.type] ?? `type ${info.type}`} vsock socket, expected ${
        TYPES[want]
      }${hint} (EPROTOTYPE)`,
    });
  }
  return info.listening;
}

/** Makes an adopted fd non-blocking and close-on-exec, as the library's own sockets are. */
export function prepareAdoptedFd(fd: number): void {
  const on = new Uint8Array(4);
  on[0] = 1;
  const a = libc.ioctl(fd, FIONBIO, on);
  if (a < 0) throw new VsockError({ errno: -a, syscall: "ioctl(FIONBIO)" });
  const b = libc.ioctl(fd, FIOCLEX, on);
  if (b < 0) throw new VsockError({ errno: -b, syscall: "ioctl(FIOCLEX)" });
}

/** For `listen({ fd })`: checks the fd and prepares it; returns whether it already listens. */
export function adoptedListenerFd(fd: number, type: SocketType): boolean {
  const listening = checkVsockFd(fd, type);
  prepareAdoptedFd(fd);
  return listening;
}
