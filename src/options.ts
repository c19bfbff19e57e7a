/**
 * Socket options: the vsock ones (level AF_VSOCK) and the generic ones users
 * reach for. Values measured on Linux 6.1 (loopback) and 6.18 (virtio):
 * the buffer size is clamped by the kernel into [min, max] (default 256 KiB in
 * [128 B, 256 KiB]); a connect timeout of 0 resets it to the 2 s default;
 * accepted sockets inherit their listener's vsock options.
 *
 * @module
 */
import { AF_VSOCK, SOL_SOCKET } from "./constants.ts";
import { check } from "./errors.ts";
import { readI32, readI64, readU64, writeU32, writeU64 } from "./host_order.ts";
import { libc } from "./socket.ts";

const SO_VM_SOCKETS_BUFFER_SIZE = 0;
const SO_VM_SOCKETS_BUFFER_MIN_SIZE = 1;
const SO_VM_SOCKETS_BUFFER_MAX_SIZE = 2;
/** The `timeval` form (`SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD`), 16 bytes on 64-bit Linux. */
const SO_VM_SOCKETS_CONNECT_TIMEOUT = 6;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_KEEPALIVE = 9;

/** Options that can be set when a socket is made, and read or changed on it later. */
export interface SocketOptions {
  /**
   * `SO_VM_SOCKETS_BUFFER_SIZE`: the receive buffer the peer may fill, i.e. the flow-control
   * window (bytes). The kernel clamps it into [`bufferMinSize`, `bufferMaxSize`].
   */
  bufferSize?: number;
  /** `SO_VM_SOCKETS_BUFFER_MIN_SIZE` (bytes). */
  bufferMinSize?: number;
  /** `SO_VM_SOCKETS_BUFFER_MAX_SIZE` (bytes); raise it before asking for a `bufferSize` above 256 KiB. */
  bufferMaxSize?: number;
  /**
   * `SO_VM_SOCKETS_CONNECT_TIMEOUT` in milliseconds, the kernel's own limit on a connect (default 2000; 0
   * restores it). The kernel keeps it in jiffies, so it reads back rounded to its tick (e.g. 750 → 752 at HZ=250).
   */
  connectTimeout?: number;
  /** `SO_RCVBUF`: stored by the kernel, but vsock's flow control uses `bufferSize` instead. */
  receiveBufferSize?: number;
  /** `SO_SNDBUF`: stored by the kernel; vsock sends are limited by the peer's `bufferSize`. */
  sendBufferSize?: number;
  /** `SO_KEEPALIVE`: stored by the kernel; the vsock transports send no keepalive probes. */
  keepAlive?: boolean;
}

/** The socket options every vsock socket takes, by name. */
export const SOCKET_OPTION_NAMES = [
  "bufferSize",
  "bufferMinSize",
  "bufferMaxSize",
  "connectTimeout",
  "receiveBufferSize",
  "sendBufferSize",
  "keepAlive",
] as const;

function count(value: unknown, name: string, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${String(value)}`);
  }
  if (value < 0 || value > max) throw new RangeError(`${name} must be between 0 and ${max}, got ${value}`);
  return value;
}

/** Checks option values before any socket exists, so bad input never leaks an fd. */
export function validateOptions(options: SocketOptions): void {
  for (const name of SOCKET_OPTION_NAMES) {
    const value = options[name];
    if (value === undefined) continue;
    if (name === "keepAlive") {
      if (typeof value !== "boolean") throw new TypeError(`keepAlive must be a boolean, got ${String(value)}`);
    } else if (name === "receiveBufferSize" || name === "sendBufferSize") {
      count(value, name, 0x7fffffff);
    } else if (name === "connectTimeout") {
      count(value, name, 2 ** 31 * 1000);
    } else {
      count(value, name, Number.MAX_SAFE_INTEGER);
    }
  }
}

function getU64(fd: number, name: number, what: string): number {
  const value = new Uint8Array(8);
  check(libc.getsockopt(fd, AF_VSOCK, name, value, new Uint32Array([8])), `getsockopt(${what})`);
  return readU64(value, 0);
}

function setU64(fd: number, name: number, what: string, v: number): void {
  const value = new Uint8Array(8);
  writeU64(value, 0, v);
  check(libc.setsockopt(fd, AF_VSOCK, name, value), `setsockopt(${what})`);
}

/** Reads an int `SOL_SOCKET` option (`what` names it in the error). */
export function getIntOption(fd: number, name: number, what: string): number {
  const value = new Uint8Array(4);
  check(libc.getsockopt(fd, SOL_SOCKET, name, value, new Uint32Array([4])), `getsockopt(${what})`);
  return readI32(value, 0);
}

function setInt(fd: number, name: number, what: string, v: number): void {
  const value = new Uint8Array(4);
  writeU32(value, 0, v);
  check(libc.setsockopt(fd, SOL_SOCKET, name, value), `setsockopt(${what})`);
}

/** Reads one option from a socket. */
export function getOption<K extends keyof SocketOptions>(fd: number, name: K): Required<SocketOptions>[K];
export function getOption(fd: number, name: keyof SocketOptions): number | boolean {
  switch (name) {
    case "bufferSize":
      return getU64(fd, SO_VM_SOCKETS_BUFFER_SIZE, "SO_VM_SOCKETS_BUFFER_SIZE");
    case "bufferMinSize":
      return getU64(fd, SO_VM_SOCKETS_BUFFER_MIN_SIZE, "SO_VM_SOCKETS_BUFFER_MIN_SIZE");
    case "bufferMaxSize":
      return getU64(fd, SO_VM_SOCKETS_BUFFER_MAX_SIZE, "SO_VM_SOCKETS_BUFFER_MAX_SIZE");
    case "connectTimeout": {
      const value = new Uint8Array(16);
      check(
        libc.getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, value, new Uint32Array([16])),
        "getsockopt(SO_VM_SOCKETS_CONNECT_TIMEOUT)",
      );
      return readI64(value, 0) * 1000 + Math.round(readI64(value, 8) / 1000); // struct timeval
    }
    case "receiveBufferSize":
      return getIntOption(fd, SO_RCVBUF, "SO_RCVBUF");
    case "sendBufferSize":
      return getIntOption(fd, SO_SNDBUF, "SO_SNDBUF");
    case "keepAlive":
      return getIntOption(fd, SO_KEEPALIVE, "SO_KEEPALIVE") !== 0;
  }
}

/** Sets one option on a socket (validated first). */
export function setOption<K extends keyof SocketOptions>(fd: number, name: K, value: Required<SocketOptions>[K]): void {
  validateOptions({ [name]: value });
  switch (name) {
    case "bufferSize":
      return setU64(fd, SO_VM_SOCKETS_BUFFER_SIZE, "SO_VM_SOCKETS_BUFFER_SIZE", value as number);
    case "bufferMinSize":
      return setU64(fd, SO_VM_SOCKETS_BUFFER_MIN_SIZE, "SO_VM_SOCKETS_BUFFER_MIN_SIZE", value as number);
    case "bufferMaxSize":
      return setU64(fd, SO_VM_SOCKETS_BUFFER_MAX_SIZE, "SO_VM_SOCKETS_BUFFER_MAX_SIZE", value as number);
    case "connectTimeout": {
      const ms = value as number;
      const tv = new Uint8Array(16);
      writeU64(tv, 0, Math.floor(ms / 1000)); // struct timeval: seconds,
      writeU64(tv, 8, (ms % 1000) * 1000); // microseconds
      check(
        libc.setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, tv),
        "setsockopt(SO_VM_SOCKETS_CONNECT_TIMEOUT)",
      );
      return;
    }
    case "receiveBufferSize":
      return setInt(fd, SO_RCVBUF, "SO_RCVBUF", value as number);
    case "sendBufferSize":
      return setInt(fd, SO_SNDBUF, "SO_SNDBUF", value as number);
    case "keepAlive":
      return setInt(fd, SO_KEEPALIVE, "SO_KEEPALIVE", value ? 1 : 0);
  }
}

const APPLY_ORDER = [
  "bufferMaxSize",
  "bufferMinSize",
  ...SOCKET_OPTION_NAMES.filter((n) => !n.startsWith("bufferM")),
] as const;

/**
 * Applies the options given at creation. The limits go first so a size
 * outside today's [min, max] is not clamped before the limit moves.
 */
export function applyOptions(fd: number, options: SocketOptions): void {
  for (const name of APPLY_ORDER) {
    const value = options[name];
    if (value !== undefined) setOption(fd, name, value as never);
  }
}
