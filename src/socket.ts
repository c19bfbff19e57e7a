/**
 * Small helpers over the adapter's libc shared by connect, listen and accept:
 * making a vsock socket, reading its addresses, and turning a connected fd
 * into a stream.
 *
 * @module
 */
import type { Socket } from "node:net";
import { adapter, type ConnectingStreamIO, type ErrorFactory, type Libc, type StreamIO } from "../ffi/mod.ts";
import { VsockAddr } from "./addr.ts";
import {
  AF_VSOCK,
  MSG_DONTWAIT,
  MSG_PEEK,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOCKADDR_VM_SIZE,
} from "./constants.ts";
import { check, VsockError } from "./errors.ts";
import { PolledStream } from "./polled_stream.ts";
import { type Reactor, reactor, unwatch } from "./reactor.ts";
import { EAGAIN } from "./errno.ts";

/** The libc every socket call goes through. */
export const libc: Libc = adapter.libc;

/** The process's readiness reactor. */
export function getReactor(): Reactor {
  return reactor(adapter);
}

/** The connection-oriented socket types: bytes (`SOCK_STREAM`) or messages (`SOCK_SEQPACKET`). */
export type SocketType = "stream" | "seqpacket";

/** The kernel's number for a {@link SocketType}. */
export function sockType(type: SocketType): number {
  return type === "seqpacket" ? SOCK_SEQPACKET : SOCK_STREAM;
}

/** A new non-blocking, close-on-exec AF_VSOCK socket of `type`. */
export function vsockSocket(type: SocketType, address?: VsockAddr): number {
  return check(libc.socket(AF_VSOCK, sockType(type) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), "socket", address);
}

/** Validates a `type` option. */
export function parseType(type: unknown): SocketType {
  if (type === undefined || type === "stream") return "stream";
  if (type === "seqpacket") return "seqpacket";
  throw new TypeError(`type must be "stream" or "seqpacket", got ${String(type)}`);
}

/**
 * One `accept4` on a non-blocking listener: the new connection's fd
 * (non-blocking, close-on-exec; `peer` holds its address, `peerLength` its
 * length) or a negative errno. A failure other than `EAGAIN` is asked again at
 * once before it is returned: errno is read after the call (ffi/types.ts) and
 * a misread must not end an accept loop. A real failure repeats; after one
 * that dropped a connection (`ECONNABORTED`) the second call just goes on.
 */
export function acceptOnce(listenFd: number, peer: Uint8Array, peerLength: Uint32Array): number {
  peerLength[0] = peer.byteLength;
  const r = libc.accept4(listenFd, peer, peerLength, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (r >= 0 || r === -EAGAIN) return r;
  peerLength[0] = peer.byteLength;
  return libc.accept4(listenFd, peer, peerLength, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/** The address `getsockname` or `getpeername` reports for `fd`, or the call's negative errno. */
export function queryAddress(fd: number, which: "getsockname" | "getpeername"): VsockAddr | number {
  const bytes = new Uint8Array(SOCKADDR_VM_SIZE);
  const length = new Uint32Array([SOCKADDR_VM_SIZE]);
  const r = libc[which](fd, bytes, length);
  if (r !== 0) return r;
  // A subarray only for a short answer, which fromBytes rejects (the common case allocates no view).
  return VsockAddr.fromBytes(length[0] === SOCKADDR_VM_SIZE ? bytes : bytes.subarray(0, length[0]));
}

/** The address `getsockname` or `getpeername` reports for `fd`; throws a `VsockError` if the call fails. */
export function socketAddress(fd: number, which: "getsockname" | "getpeername"): VsockAddr {
  const address = queryAddress(fd, which);
  if (typeof address === "number") check(address, which);
  return address as VsockAddr;
}

/**
 * `true` when the kernel holds bytes of `fd` not yet read: a one-byte
 * `recv(MSG_PEEK | MSG_DONTWAIT)`, which takes nothing. End of stream and
 * errors count as no input.
 */
export function kernelHasInput(fd: number): boolean {
  return libc.recv(fd, new Uint8Array(1), MSG_PEEK | MSG_DONTWAIT) > 0;
}

/** Builds the typed error for a failed stream call (handed to `ffi/` for adopted sockets). */
export function streamError(errno: number, syscall: string): Error {
  return new VsockError({ errno, syscall });
}

/**
 * Turns a connected non-blocking fd into a stream: the runtime's own event
 * loop when it can adopt fds, else the reactor (with `busyPollUs`, see
 * `connect()`'s `busyPoll`). On failure the fd is closed.
 */
export async function openStream(fd: number, busyPollUs = 0): Promise<StreamIO> {
  if (adapter.adoptStream) {
    // The runtime's loop watches the fd from now on; ours lets go (a no-op unless connect() left it registered).
    unwatch(fd);
    try {
      return await adapter.adoptStream(fd, streamError);
    } catch (error) {
      libc.close(fd);
      throw error;
    }
  }
  // The stream joins the reactor at its first EAGAIN (an fd connect() left registered stays so).
  return new PolledStream(fd, getReactor(), libc, busyPollUs);
}

/** `true` when the runtime's own `node:net` can take a connected fd (see `openNetSocket`). */
export const adoptsNetSocket: boolean = adapter.adoptNetSocket !== undefined;

/**
 * Hands a connected stream fd to the runtime's own `node:net` (only where
 * `adoptsNetSocket`); the socket owns it from then on. On failure the fd is
 * closed.
 */
export function openNetSocket(fd: number): Socket {
  try {
    if (!adapter.adoptNetSocket) throw new Error("this runtime's node:net cannot take a vsock fd");
    return adapter.adoptNetSocket(fd);
  } catch (error) {
    libc.close(fd);
    throw error;
  }
}

/** `true` when the runtime's loop can take a socket whose connect is still under way (see `openConnectingStream`). */
export const adoptsConnecting: boolean = adapter.adoptConnecting !== undefined;

/**
 * Hands `fd`, its connect under way, to the runtime's loop, which then says
 * when the connect is done (`connected()`); `toError` builds the stream's
 * errors. Only where `adoptsConnecting`. On failure the fd is closed.
 */
export function openConnectingStream(fd: number, toError: ErrorFactory): Promise<ConnectingStreamIO> {
  // Not async itself: a Bun connect passes here, and an async frame is one more promise a connect.
  const adopted = adapter.adoptConnecting?.(fd, toError) ??
    Promise.reject(new Error("this runtime cannot adopt a connecting socket"));
  return adopted.catch((error: unknown) => {
    libc.close(fd);
    throw error;
  });
}
