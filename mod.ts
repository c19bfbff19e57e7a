/**
 * Linux `AF_VSOCK` sockets for Bun and Deno, by FFI into libc: nothing to
 * compile. Stream connections with the shape of `Deno.Conn`, listeners,
 * typed errors and the vsock address type.
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
export {
  VMADDR_CID_ANY,
  VMADDR_CID_HOST,
  VMADDR_CID_HYPERVISOR,
  VMADDR_CID_LOCAL,
  VMADDR_FLAG_TO_HOST,
  VMADDR_PORT_ANY,
} from "./src/constants.ts";
export { VsockConn } from "./src/conn.ts";
export { connect, type ConnectOptions } from "./src/connect.ts";
export { VsockError, type VsockErrorOptions } from "./src/errors.ts";
export { listen, type ListenOptions, VsockListener } from "./src/listener.ts";
export { localCid } from "./src/local_cid.ts";
