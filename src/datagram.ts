/**
 * `bindDatagram()`: AF_VSOCK SOCK_DGRAM. vsock(7) lists datagrams, but only
 * the VMCI transport (VMware) carries them; virtio (KVM/QEMU, Firecracker,
 * Cloud Hypervisor), Hyper-V and loopback refuse them — seen as `ENODEV` from
 * `socket()` on Linux 6.1 and 6.18. The API is real, not a stub: on VMware it
 * delivers; elsewhere it fails at once with an error that says why.
 *
 * @module
 */
import { VsockAddr } from "./addr.ts";
import {
  AF_VSOCK,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCKADDR_VM_SIZE,
  VMADDR_CID_ANY,
  VMADDR_PORT_ANY,
} from "./constants.ts";
import { VsockError } from "./errors.ts";
import { getReactor, libc, socketAddress } from "./socket.ts";
import { VsockSocket } from "./vsock_socket.ts";
import { EAGAIN, EINTR, ENODEV, EOPNOTSUPP, ESOCKTNOSUPPORT } from "./errno.ts";

/** The largest datagram VMCI carries (`VMCI_MAX_DG_SIZE`, less its header). */
const MAX_DATAGRAM = 64 * 1024;

/** A received datagram and who sent it. */
export interface Datagram {
  data: Uint8Array;
  from: VsockAddr;
}

function transportError(errno: number, syscall: string, address?: VsockAddr): VsockError {
  if (errno === ENODEV || errno === EOPNOTSUPP || errno === ESOCKTNOSUPPORT) {
    return new VsockError({
      errno,
      syscall,
      address,
      message:
        `${syscall}(AF_VSOCK, SOCK_DGRAM) failed: vsock datagrams are carried only by the VMCI transport (VMware); ` +
        `virtio (QEMU/KVM, Firecracker, Cloud Hypervisor), Hyper-V and loopback have none — use a stream or seqpacket socket (${
          errno === ENODEV ? "ENODEV" : errno === EOPNOTSUPP ? "EOPNOTSUPP" : "ESOCKTNOSUPPORT"
        })`,
    });
  }
  return new VsockError({ errno, syscall, address });
}

/**
 * A bound vsock datagram socket. Only VMware's VMCI transport delivers
 * datagrams; see the module comment.
 */
export class VsockDatagramSocket extends VsockSocket {
  /** The bound address, from `getsockname`. */
  readonly addr: VsockAddr;

  /** @internal Made by {@link bindDatagram}. */
  constructor(fd: number, addr: VsockAddr) {
    super(fd, "datagram socket");
    this.addr = addr;
  }

  /** Errors name the bound address. */
  protected get errorAddress(): VsockAddr {
    return this.addr;
  }

  /** Sends one datagram to `to`; resolves with the bytes sent. */
  async send(data: Uint8Array, to: VsockAddr | { cid: number; port: number }): Promise<number> {
    if (!(data instanceof Uint8Array)) throw new TypeError("VsockDatagramSocket.send takes a Uint8Array");
    const target = to instanceof VsockAddr ? to : new VsockAddr(to.cid, to.port);
    const bytes = target.toBytes();
    for (;;) {
      this.assertOpen("sendto");
      const n = libc.sendto(this.fd, data, 0, bytes);
      if (n >= 0) return n;
      if (n === -EAGAIN) await getReactor().wait(this.fd, "write");
      else if (n !== -EINTR) throw transportError(-n, "sendto", target);
    }
  }

  /** Receives the next datagram (up to 64 KiB) and its sender; `null` after `close()`. */
  async receive(): Promise<Datagram | null> {
    const buffer = new Uint8Array(MAX_DATAGRAM);
    const from = new Uint8Array(SOCKADDR_VM_SIZE);
    const fromLength = new Uint32Array(1);
    this.assertOpen("recvfrom");
    for (;;) {
      if (this.closed) return null;
      fromLength[0] = SOCKADDR_VM_SIZE;
      const n = libc.recvfrom(this.fd, buffer, 0, from, fromLength);
      if (n >= 0) return { data: buffer.slice(0, n), from: VsockAddr.fromBytes(from.subarray(0, fromLength[0])) };
      if (n === -EAGAIN) await getReactor().wait(this.fd, "read");
      else if (n !== -EINTR) throw transportError(-n, "recvfrom", this.addr);
    }
  }

  /** Closes the socket; a pending `receive()` resolves `null`. */
  close(): void {
    if (!this.markClosed()) return;
    getReactor().unregister(this.fd);
    libc.close(this.fd);
  }
}

/**
 * Makes and binds a vsock datagram socket (defaults: any CID, any port).
 * Throws a `VsockError` explaining the transport limit where datagrams are
 * not carried (everything but VMware's VMCI).
 */
export function bindDatagram(options: { cid?: number; port?: number } = {}): VsockDatagramSocket {
  const address = new VsockAddr(options.cid ?? VMADDR_CID_ANY, options.port ?? VMADDR_PORT_ANY);
  const fd = libc.socket(AF_VSOCK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw transportError(-fd, "socket", address);
  try {
    const r = libc.bind(fd, address.toBytes());
    if (r < 0) throw transportError(-r, "bind", address);
    getReactor().register(fd);
    return new VsockDatagramSocket(fd, socketAddress(fd, "getsockname"));
  } catch (error) {
    getReactor().unregister(fd);
    libc.close(fd);
    throw error;
  }
}
