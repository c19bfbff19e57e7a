/**
 * Linux `AF_VSOCK` sockets for Bun and Deno, by FFI into libc: nothing to
 * compile. Stream connections with the shape of `Deno.Conn`, message
 * (SOCK_SEQPACKET) connections, listeners, datagram sockets where the
 * transport has them, socket options, fd adoption and systemd socket
 * activation, typed errors and the vsock address type.
 *
 * @example
 * ```ts
 * import { connect, listen, VMADDR_CID_LOCAL } from "./mod.ts";
 *
 * const listener = listen({ port: 5000 });
 * const client = await connect({ cid: VMADDR_CID_LOCAL, port: 5000 });
 * const server = await listener.accept();
 * ```
 *
 * @module
 */
export { VsockAddr } from "./src/addr.ts";
export { type ActivatedListener, fromFd, listenFds } from "./src/adopt.ts";
export {
  VMADDR_CID_ANY,
  VMADDR_CID_HOST,
  VMADDR_CID_HYPERVISOR,
  VMADDR_CID_LOCAL,
  VMADDR_FLAG_TO_HOST,
  VMADDR_PORT_ANY,
} from "./src/constants.ts";
export { VsockConn } from "./src/conn.ts";
export { connect, type ConnectOptions, type HybridAddrString, type StreamConnectTarget } from "./src/connect.ts";
export { bindDatagram, type Datagram, VsockDatagramSocket } from "./src/datagram.ts";
export { RECONNECT_CODES, shouldReconnect, VsockError, type VsockErrorOptions } from "./src/errors.ts";
export { listen, type ListenOptions, VsockListener } from "./src/listener.ts";
export { HybridAddr } from "./src/hybrid/addr.ts";
export { DEFAULT_HANDSHAKE_TIMEOUT, type HybridConnectOptions } from "./src/hybrid/connect.ts";
export { HybridListener, type HybridListenOptions } from "./src/hybrid/listen.ts";
export { localCid } from "./src/local_cid.ts";
export type { SocketOptions } from "./src/options.ts";
export { VsockSeqpacketConn } from "./src/seqpacket.ts";
export type { SocketType } from "./src/socket.ts";
export { VsockSocket } from "./src/vsock_socket.ts";
