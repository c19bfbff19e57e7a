/**
 * Adopting sockets the library did not make: `fromFd()` for a connected
 * socket, and `listenFds()` for systemd socket activation
 * (`ListenStream=vsock:CID:PORT`). `listen({ fd })` lives with `listen()`.
 *
 * @module
 */
import process from "node:process";
import { checkVsockFd, inspectFd, prepareAdoptedFd } from "./adopt_fd.ts";
import type { VsockConn } from "./conn.ts";
import { VsockError } from "./errors.ts";
import { listen, type VsockListener } from "./listener.ts";
import type { VsockSeqpacketConn } from "./seqpacket.ts";
import { parseType, socketAddress, type SocketType } from "./socket.ts";
import { wrapConnected } from "./wrap.ts";
import { AF_VSOCK, SOCK_SEQPACKET, SOCK_STREAM } from "./constants.ts";
import { EINVAL, ENOTCONN } from "./errno.ts";

/** `sd_listen_fds(3)`: passed fds start here. */
const SD_LISTEN_FDS_START = 3;

/**
 * Adopts a connected AF_VSOCK socket (inherited, or passed in from other
 * code). It is checked to be AF_VSOCK, of `type` (default `"stream"`) and
 * connected; the returned connection owns it from then on.
 *
 * @example
 * ```ts
 * const conn = await fromFd(3); // e.g. systemd Accept=yes
 * ```
 */
export function fromFd(fd: number, options: { type: "seqpacket" }): Promise<VsockSeqpacketConn>;
export function fromFd(fd: number, options?: { type?: "stream" }): Promise<VsockConn>;
export async function fromFd(fd: number, options: { type?: SocketType } = {}): Promise<VsockConn | VsockSeqpacketConn> {
  if (!Number.isInteger(fd) || fd < 0) {
    throw new TypeError(`fromFd() takes a file descriptor number, got ${String(fd)}`);
  }
  const type = parseType(options.type);
  if (checkVsockFd(fd, type)) {
    throw new VsockError({
      errno: EINVAL,
      syscall: "adopt",
      message: `fd ${fd} is a listening socket: use listen({ fd: ${fd} }) (EINVAL)`,
    });
  }
  const local = socketAddress(fd, "getsockname");
  let remote;
  try {
    remote = socketAddress(fd, "getpeername");
  } catch (error) {
    throw new VsockError({
      errno: ENOTCONN,
      syscall: "getpeername",
      message: `fd ${fd} is not connected (ENOTCONN)`,
      cause: error,
    });
  }
  prepareAdoptedFd(fd);
  return await wrapConnected(fd, type, local, remote);
}

/** A listener handed over by systemd, with the name from `FileDescriptorName=`. */
export interface ActivatedListener {
  /** The name systemd gave the fd (`LISTEN_FDNAMES`), or `"unknown"`. */
  name: string;
  /** The fd number it arrived as. */
  fd: number;
  /** The listener, stream or seqpacket as the socket unit said. */
  listener: VsockListener<VsockConn> | VsockListener<VsockSeqpacketConn>;
}

/**
 * systemd socket activation: adopts the AF_VSOCK sockets passed by
 * `LISTEN_FDS`/`LISTEN_PID` (see sd_listen_fds(3)), stream and seqpacket.
 * Returns `[]` when nothing was passed to this process. Passed fds of other
 * families are left alone for other code. The variables are removed from the
 * environment so child processes do not inherit them. On Deno this needs
 * `--allow-env`.
 *
 * @example
 * ```ts
 * // vsock-echo.socket: [Socket] ListenStream=vsock::5000
 * for (const { listener } of listenFds()) serve(listener);
 * ```
 */
export function listenFds(): ActivatedListener[] {
  const env = process.env;
  const pid = env.LISTEN_PID;
  const count = env.LISTEN_FDS;
  if (pid === undefined || count === undefined || Number(pid) !== process.pid) return [];
  const n = Number(count);
  if (!Number.isInteger(n) || n < 0) throw new TypeError(`LISTEN_FDS is not a count: "${count}"`);
  const names = (env.LISTEN_FDNAMES ?? "").split(":");
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  const out: ActivatedListener[] = [];
  for (let i = 0; i < n; i++) {
    const fd = SD_LISTEN_FDS_START + i;
    const info = inspectFd(fd);
    if (info.family !== AF_VSOCK || (info.type !== SOCK_STREAM && info.type !== SOCK_SEQPACKET)) continue;
    const listener = info.type === SOCK_SEQPACKET ? listen({ fd, type: "seqpacket" }) : listen({ fd });
    out.push({ name: names[i] || "unknown", fd, listener });
  }
  return out;
}
