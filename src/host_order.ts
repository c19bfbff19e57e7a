/**
 * The kernel's integers in host byte order (`sockaddr_vm` fields, socket
 * option values, `epoll_event`), read and written byte by byte.
 *
 * Why not a `DataView`: JavaScriptCore (Bun) gives a small typed array its own
 * `ArrayBuffer` only when `.buffer` is first read, and a CPU profile of 2,000
 * connects on Bun in the test VM had `.buffer` and `new DataView` on the
 * connect path (packing and unpacking addresses, reading `SO_ERROR`) at about
 * 5 % of the process's samples.
 *
 * @module
 */

/** Whether this host stores integers least significant byte first (x86-64, arm64). */
export const LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The byte of a `size`-byte integer at `at` that holds bits `8 * i` and up. */
function index(at: number, size: number, i: number): number {
  return LITTLE_ENDIAN ? at + i : at + size - 1 - i;
}

/** Reads the unsigned 16-bit integer at `at`. */
export function readU16(bytes: Uint8Array, at: number): number {
  return bytes[index(at, 2, 0)] | (bytes[index(at, 2, 1)] << 8);
}

/** Writes `value` as an unsigned 16-bit integer at `at`. */
export function writeU16(bytes: Uint8Array, at: number, value: number): void {
  bytes[index(at, 2, 0)] = value;
  bytes[index(at, 2, 1)] = value >>> 8;
}

/** Reads the unsigned 32-bit integer at `at`. */
export function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[index(at, 4, 0)] | (bytes[index(at, 4, 1)] << 8) | (bytes[index(at, 4, 2)] << 16) |
    (bytes[index(at, 4, 3)] << 24)) >>> 0;
}

/** Writes `value` (a signed or unsigned 32-bit integer) at `at`. */
export function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[index(at, 4, 0)] = value;
  bytes[index(at, 4, 1)] = value >>> 8;
  bytes[index(at, 4, 2)] = value >>> 16;
  bytes[index(at, 4, 3)] = value >>> 24;
}

/** Reads the signed 32-bit integer (a C `int`) at `at`. */
export function readI32(bytes: Uint8Array, at: number): number {
  return readU32(bytes, at) | 0;
}

/** The offsets of a 64-bit integer's low and high 32-bit halves at `at`. */
function halves(at: number): [number, number] {
  return LITTLE_ENDIAN ? [at, at + 4] : [at + 4, at];
}

/** Reads the signed 64-bit integer at `at` as a number (exact up to 2^53). */
export function readI64(bytes: Uint8Array, at: number): number {
  const [low, high] = halves(at);
  return readI32(bytes, high) * 2 ** 32 + readU32(bytes, low);
}

/** Reads the unsigned 64-bit integer at `at` as a number (exact up to 2^53). */
export function readU64(bytes: Uint8Array, at: number): number {
  const [low, high] = halves(at);
  return readU32(bytes, high) * 2 ** 32 + readU32(bytes, low);
}

/** Writes `value`, an integer in [0, 2^53), as a 64-bit integer at `at`. */
export function writeU64(bytes: Uint8Array, at: number, value: number): void {
  const [low, high] = halves(at);
  writeU32(bytes, low, value % 2 ** 32);
  writeU32(bytes, high, Math.floor(value / 2 ** 32));
}
