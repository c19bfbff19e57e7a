/**
 * `localCid()`: this machine's own context id.
 *
 * @module
 */
import { IOCTL_VM_SOCKETS_GET_LOCAL_CID, O_CLOEXEC, O_RDONLY } from "./constants.ts";
import { check } from "./errors.ts";
import { libc } from "./socket.ts";

/**
 * Returns the local CID (`IOCTL_VM_SOCKETS_GET_LOCAL_CID` on `/dev/vsock`):
 * a guest's own CID, or 2 on a host. It is read anew on every call, because
 * live migration can change it. Throws a `VsockError` when `/dev/vsock` is
 * missing or vsock is not supported.
 *
 * @example
 * ```ts
 * console.log(`this VM is CID ${localCid()}`);
 * ```
 */
export function localCid(): number {
  const fd = check(libc.open(new TextEncoder().encode("/dev/vsock\0"), O_RDONLY | O_CLOEXEC), "open");
  try {
    const cid = new Uint32Array(1);
    check(libc.ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, new Uint8Array(cid.buffer)), "ioctl");
    return cid[0];
  } finally {
    libc.close(fd);
  }
}
