/**
 * Numbers from vsock(7) and the Linux socket headers. The `VMADDR_*` ones are
 * public API; the rest are for the library's own calls.
 *
 * @module
 */

/** Bind to any CID: the listener accepts on every transport. */
export const VMADDR_CID_ANY = 0xffffffff;
/** The hypervisor's CID (0); rarely a useful peer. */
export const VMADDR_CID_HYPERVISOR = 0;
/** This machine's own CID (1): the loopback transport (`vsock_loopback`). */
export const VMADDR_CID_LOCAL = 1;
/** The host, as seen from a guest (2). */
export const VMADDR_CID_HOST = 2;
/** Bind to any port: the kernel picks a free one. */
export const VMADDR_PORT_ANY = 0xffffffff;
/** `svm_flags` bit asking a nested hypervisor to forward the connection to the host. */
export const VMADDR_FLAG_TO_HOST = 1;

/** Internal: address family and socket-call constants (Linux, all architectures we support). */
export const AF_VSOCK = 40;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_ERROR = 4;
export const SHUT_WR = 1;
/** Without it a send on a broken connection raises SIGPIPE. */
export const MSG_NOSIGNAL = 0x4000;
/** recv: look at queued bytes without taking them. */
export const MSG_PEEK = 2;
/** recv: never wait, whatever the fd's mode. */
export const MSG_DONTWAIT = 0x40;
export const O_RDONLY = 0;
export const O_CLOEXEC = 0o2000000;
/** `_IO(7, 0xb9)` from linux/vm_sockets.h. */
export const IOCTL_VM_SOCKETS_GET_LOCAL_CID = 0x7b9;
/** `sizeof(struct sockaddr_vm)`. */
export const SOCKADDR_VM_SIZE = 16;
