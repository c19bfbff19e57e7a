/**
 * How an accepted connection reaches `node:http`, and what `serve()` asks of
 * it afterwards (its addresses, when bytes last arrived, whether some wait
 * unread). Two ways:
 *
 * - **native** (Bun, `AF_VSOCK` listeners): the accepted fd goes straight to
 *   the runtime's own `node:net`, so its `node:http` reads and writes the
 *   socket itself (measured in the test VM, README, Benchmarks).
 * - **bridged** (everywhere else, and hybrid listeners): the listener's
 *   connection is wrapped in a {@link ConnDuplex}.
 *
 * @module
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { VsockAddr } from "../addr.ts";
import { type ByteConn, ConnDuplex } from "../conn_duplex.ts";
import { acceptFd, VsockListener } from "../listener.ts";
import { adoptsNetSocket, kernelHasInput, libc, openNetSocket } from "../socket.ts";
import type { ConnListener, ServeAddr } from "./serve.ts";

/** One accepted connection as `serve()` holds it. */
export interface Served<A extends ServeAddr> {
  /** What `node:http` is handed: a `net.Socket` of the runtime's, or a {@link ConnDuplex}. */
  readonly socket: Duplex;
  readonly localAddr: A;
  readonly remoteAddr: A;
  /**
   * When bytes last arrived (`Date.now()`), as well as the connection can
   * tell: exact for a bridged one; for a native one, when a change of its
   * `bytesRead` was first seen (the keep-alive timer looks when it is armed and
   * when it fires, so a connection is closed only after a whole
   * `keepAliveTimeout` without a byte).
   */
  lastReadAt(): number;
  /** `true` while bytes wait that `node:http` has not taken yet (in the stream or still in the kernel). */
  hasInput(): boolean;
}

/** A listener's connection, wrapped in a {@link ConnDuplex}. */
function bridged<A extends ServeAddr>(conn: ByteConn & { localAddr: A; remoteAddr: A }): Served<A> {
  const duplex = new ConnDuplex(conn);
  return {
    socket: duplex,
    localAddr: conn.localAddr,
    remoteAddr: conn.remoteAddr,
    lastReadAt: () => duplex.lastReadAt,
    hasInput: () => duplex.hasInput(),
  };
}

/**
 * Gives `socket` the address getters `ConnDuplex` has (CIDs as strings, where
 * `net.Socket` has IP addresses): srvx builds a request's URL from them when
 * it has no `Host` header, and the runtime's own getters know no vsock.
 */
function vsockAddresses(socket: Socket, local: VsockAddr, remote: VsockAddr): void {
  const values = {
    remoteAddress: String(remote.cid),
    remotePort: remote.port,
    remoteFamily: "vsock",
    localAddress: String(local.cid),
    localPort: local.port,
  };
  for (const [name, value] of Object.entries(values)) {
    Object.defineProperty(socket, name, { value, configurable: true, enumerable: true });
  }
}

/** An accepted fd handed to the runtime's own `node:net`. */
function native(fd: number, local: VsockAddr, remote: VsockAddr): Served<VsockAddr> {
  const socket = openNetSocket(fd);
  vsockAddresses(socket, local, remote);
  let seen = 0;
  let seenAt = Date.now();
  return {
    socket,
    localAddr: local,
    remoteAddr: remote,
    lastReadAt: () => {
      if (socket.bytesRead !== seen) [seen, seenAt] = [socket.bytesRead, Date.now()];
      return seenAt;
    },
    // The fd is the socket's until it is destroyed; the kernel's queue is asked only before that.
    hasInput: () => !socket.destroyed && (socket.readableLength > 0 || kernelHasInput(fd)),
  };
}

/**
 * The accept function `serve()` runs on `listener`: each call resolves with
 * the next connection to serve, or `undefined` for one `allow` refused (it is
 * closed before a byte is read). Rejects as the listener's `accept()` does.
 */
export function acceptServed<A extends ServeAddr>(
  listener: ConnListener<A>,
  allow: ReadonlySet<number> | undefined,
): () => Promise<Served<A> | undefined> {
  const refused = (addr: ServeAddr): boolean => allow !== undefined && !allow.has((addr as VsockAddr).cid);
  if (adoptsNetSocket && listener instanceof VsockListener && listener.type === "stream") {
    return async () => {
      const { fd, local, remote } = await acceptFd(listener);
      if (refused(remote)) {
        libc.close(fd);
        return undefined;
      }
      return native(fd, local, remote) as unknown as Served<A>; // A is VsockAddr for an AF_VSOCK listener
    };
  }
  return async () => {
    const conn = await listener.accept();
    if (refused(conn.remoteAddr)) {
      conn.close();
      return undefined;
    }
    return bridged(conn);
  };
}
