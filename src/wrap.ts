/**
 * Turns a connected fd into the right connection object for its type. Used
 * by connect, accept and fd adoption alike. Owns the fd from the call on:
 * on failure it is closed.
 *
 * @module
 */
import type { VsockAddr } from "./addr.ts";
import { VsockConn } from "./conn.ts";
import { makeBlocking, VsockSeqpacketConn } from "./seqpacket.ts";
import { getReactor, libc, openStream, type SocketType } from "./socket.ts";

/** A stream connection, or a message connection for `"seqpacket"`; `busyPollUs` as in `connect()`. */
export async function wrapConnected(
  fd: number,
  type: SocketType,
  local: VsockAddr,
  remote: VsockAddr,
  busyPollUs = 0,
): Promise<VsockConn | VsockSeqpacketConn> {
  if (type === "stream") return new VsockConn(await openStream(fd, busyPollUs), fd, local, remote);
  // Message sockets always use the reactor: a runtime's own stream loop would not keep boundaries.
  const loop = getReactor();
  try {
    makeBlocking(fd);
    loop.register(fd);
    return new VsockSeqpacketConn(fd, local, remote, loop);
  } catch (error) {
    loop.unregister(fd);
    libc.close(fd);
    throw error;
  }
}
