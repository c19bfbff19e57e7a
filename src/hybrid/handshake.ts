/**
 * The host side of the hybrid vsock handshake, on a connected non-blocking
 * Unix socket registered with the reactor:
 *
 *   host → VMM   `CONNECT <guest port>\n`   in one write
 *   VMM → host   `OK <port>\n`              then the guest's bytes
 *
 * Sources (Firecracker 81b38b9, docs/vsock.md "Host-Initiated Connections" and
 * src/vmm/src/devices/virtio/vsock/unix/muxer.rs `read_local_stream_port`):
 * the muxer reads the request from a non-blocking socket with `read_exact` of
 * 10 bytes then one byte at a time up to a 32-byte buffer, so a request split
 * across writes can fail with `WouldBlock` and the connection is dropped; the
 * verb is compared lower-cased. "If no one is listening, Firecracker will
 * terminate the host connection": failure is EOF (or a reset) with no bytes.
 * Cloud Hypervisor (ae44c29, virtio-devices/src/vsock/unix/muxer.rs) descends
 * from the same muxer but keeps a partly read request across reads, so it
 * tolerates a split one; vhost-device-vsock answers `OK <guest port>`. So the
 * request goes in one write for Firecracker's sake, and only the `OK ` prefix
 * of the reply is checked.
 *
 * The reply is read with `MSG_PEEK` and then exactly the line is consumed:
 * bytes the guest sent right after `OK …\n` (same segment) stay in the kernel
 * and are the first thing the connection's stream reads, whichever loop
 * (ours or Bun's) takes the fd over. Nothing is ever buffered here.
 *
 * @module
 */
import { MSG_NOSIGNAL, MSG_PEEK } from "../constants.ts";
import { VsockError } from "../errors.ts";
import { getReactor, libc } from "../socket.ts";
import type { HybridAddr } from "./addr.ts";
import { EAGAIN, ECONNRESET, EINTR, EPIPE, EPROTO } from "../errno.ts";

/** Firecracker's request buffer; a reply line longer than this is not a VMM's. */
export const LINE_LIMIT = 32;

/** The request for guest port `port`: ASCII, at most 20 bytes, so it always goes in one write. */
export function connectRequest(port: number): Uint8Array {
  return new TextEncoder().encode(`CONNECT ${port}\n`);
}

/** The error for a VMM that hung up during the handshake. */
export function handshakeReset(address: HybridAddr, syscall: string, how: string): VsockError {
  return new VsockError({
    errno: ECONNRESET,
    syscall,
    address,
    message: `hybrid vsock connect to ${address.toString()}: the VMM ${how} during the handshake — ` +
      `nothing is listening on guest port ${address.port}, or the VM is not running (yet) (ECONNRESET)`,
  });
}

function badReply(address: HybridAddr, got: string, why: string): VsockError {
  return new VsockError({
    errno: EPROTO,
    syscall: "recv",
    address,
    message: `hybrid vsock connect to ${address.toString()}: ${why}, got ${JSON.stringify(got)} (EPROTO)`,
  });
}

/**
 * Sends the request in one `send`. A fresh Unix stream socket always has room
 * for 20 bytes; should it not, we wait and send the whole line again (nothing
 * went yet), never a part of it.
 */
export async function sendRequest(fd: number, address: HybridAddr, cancelled: () => unknown): Promise<void> {
  const request = connectRequest(address.port);
  for (;;) {
    const n = libc.send(fd, request, MSG_NOSIGNAL);
    if (n === request.byteLength) return;
    if (n === -EAGAIN) await getReactor().wait(fd, "write");
    else if (n === -EPIPE || n === -ECONNRESET) throw handshakeReset(address, "send", "closed the connection");
    else if (n < 0 && n !== -EINTR) throw new VsockError({ errno: -n, syscall: "send", address });
    else if (n >= 0) {
      // A stream socket may legally take a prefix; the VMM would then drop the request.
      throw new VsockError({
        errno: EPROTO,
        syscall: "send",
        address,
        message: `hybrid vsock connect to ${address.toString()}: the kernel took only ${n} of the ` +
          `${request.byteLength} request bytes; a split request is dropped by Firecracker (EPROTO)`,
      });
    }
    const reason = cancelled();
    if (reason !== undefined) throw reason;
  }
}

/**
 * Reads the reply line and returns the port it names (`VMADDR_PORT_ANY` if
 * none). Rejects `EPROTO` for a line that does not start with `OK `, and
 * `ECONNRESET` for EOF or a reset before the line ended.
 */
export async function readReply(fd: number, address: HybridAddr, cancelled: () => unknown): Promise<number> {
  const peek = new Uint8Array(LINE_LIMIT);
  let line = "";
  const decoder = new TextDecoder("utf-8", { fatal: false });
  for (;;) {
    const room = peek.subarray(0, LINE_LIMIT - line.length);
    const n = libc.recv(fd, room, MSG_PEEK);
    if (n > 0) {
      const end = room.subarray(0, n).indexOf(0x0a);
      // Consume the line's bytes only: everything after the '\n' is the guest's.
      const take = end >= 0 ? end + 1 : n;
      const got = libc.recv(fd, peek.subarray(0, take), 0);
      if (got !== take) throw new VsockError({ errno: got < 0 ? -got : EPROTO, syscall: "recv", address });
      line += decoder.decode(peek.subarray(0, end >= 0 ? end : take), { stream: end < 0 });
      if (end >= 0) return parseReply(line, address);
      if (line.length >= LINE_LIMIT) {
        throw badReply(address, line, `the VMM's reply has no end of line within ${LINE_LIMIT} bytes`);
      }
      continue;
    }
    if (n === 0) {
      throw line === ""
        ? handshakeReset(address, "recv", "closed the connection")
        : badReply(address, line, "the VMM closed the connection in the middle of its reply");
    }
    if (n === -EAGAIN) await getReactor().wait(fd, "read");
    else if (n === -ECONNRESET || n === -EPIPE) throw handshakeReset(address, "recv", "reset the connection");
    else if (n !== -EINTR) throw new VsockError({ errno: -n, syscall: "recv", address });
    const reason = cancelled();
    if (reason !== undefined) throw reason;
  }
}

function parseReply(line: string, address: HybridAddr): number {
  if (!line.startsWith("OK ")) throw badReply(address, line, 'expected "OK <port>" from the VMM');
  const text = line.slice(3).trim();
  // Firecracker/Cloud Hypervisor: a host-side port in [2^30, 2^31); vhost-device-vsock: the guest port.
  return /^\d{1,10}$/.test(text) && Number(text) <= 0xffffffff ? Number(text) : 0xffffffff;
}
