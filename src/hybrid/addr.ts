/**
 * `HybridAddr`: a guest port reached through a VMM's vsock Unix socket
 * ("hybrid vsock": Firecracker, Cloud Hypervisor, vhost-device-vsock), its
 * string form `unix:///run/vm1/v.sock?port=52`, and the 110-byte
 * `struct sockaddr_un` the kernel takes.
 *
 * @module
 */
import { resolve } from "node:path";
import { VMADDR_PORT_ANY } from "../constants.ts";
import { writeU16 } from "../host_order.ts";

/** `AF_UNIX`, the `sun_family` of a `sockaddr_un`. */
export const AF_UNIX = 1;
/** `sizeof(struct sockaddr_un)` on Linux: a 2-byte family and a 108-byte path. */
export const SOCKADDR_UN_SIZE = 110;
/** The longest path that fits `sun_path` with its terminating NUL. */
export const MAX_PATH_BYTES = 107;

const U32_MAX = 0xffffffff;
const SCHEME = "unix://";

/** Checks a socket path: a non-empty string without NUL bytes, made absolute, that fits `sun_path`. */
function socketPath(path: unknown, what: string): string {
  if (typeof path !== "string" || path === "") {
    throw new TypeError(
      `hybrid vsock ${what} must be a non-empty path string, got ${JSON.stringify(path) ?? "undefined"}`,
    );
  }
  if (path.includes("\0")) {
    throw new TypeError(`hybrid vsock ${what} must not contain NUL bytes: ${JSON.stringify(path)}`);
  }
  const absolute = resolve(path);
  const length = new TextEncoder().encode(absolute).byteLength;
  if (length > MAX_PATH_BYTES) {
    throw new RangeError(
      `hybrid vsock ${what} "${absolute}" is ${length} bytes; a Unix socket path holds at most ${MAX_PATH_BYTES}`,
    );
  }
  return absolute;
}

function port(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`hybrid vsock port must be an integer, got ${String(value)}`);
  }
  if (value < 0 || value > U32_MAX) {
    throw new RangeError(`hybrid vsock port must be between 0 and ${U32_MAX}, got ${value}`);
  }
  return value;
}

/** Packs `path` (already checked) into a zero-filled `sockaddr_un`. */
export function sockaddrUn(path: string): Uint8Array {
  const bytes = new Uint8Array(SOCKADDR_UN_SIZE);
  writeU16(bytes, 0, AF_UNIX); // sun_family, in host byte order
  const encoded = new TextEncoder().encode(path);
  if (encoded.byteLength > MAX_PATH_BYTES) {
    throw new RangeError(`Unix socket path "${path}" is ${encoded.byteLength} bytes; at most ${MAX_PATH_BYTES} fit`);
  }
  bytes.set(encoded, 2); // sun_path, NUL-terminated by the zero fill
  return bytes;
}

/**
 * A hybrid vsock address: the VMM's vsock Unix socket (`uds_path` in
 * Firecracker, `socket=` in Cloud Hypervisor's `--vsock`) and a vsock port.
 *
 * - As `connect()`'s `remoteAddr` the port is the guest port dialed; as its
 *   `localAddr`, the port the VMM reported in `OK <port>` (the host-side port
 *   the guest sees as its peer on Firecracker/Cloud Hypervisor; vhost-device-vsock
 *   echoes the guest port), or `VMADDR_PORT_ANY` if the reply carried no number.
 * - As a hybrid listener's `addr` the port is the host port guests dial; its
 *   connections' `remoteAddr` has port `VMADDR_PORT_ANY`: the VMM does not
 *   say which guest port dialed.
 *
 * The string form is `unix://` + absolute path + `?port=N`; the path is
 * percent-encoded where it holds `%`, `?`, `#` or characters a URL cannot carry.
 * `VMADDR_PORT_ANY` prints as `port=*`.
 *
 * @example
 * ```ts
 * const addr = HybridAddr.parse("unix:///run/vm1/v.sock?port=52");
 * addr.path;        // "/run/vm1/v.sock"
 * addr.port;        // 52
 * addr.listenPath;  // "/run/vm1/v.sock_52": where the VMM forwards guest connects to host port 52
 * ```
 */
export class HybridAddr {
  /** Always `"hybrid"`: tells it apart from a `VsockAddr` (`"vsock"`). */
  readonly transport = "hybrid" as const;
  /** The VMM's vsock Unix socket, absolute. */
  readonly path: string;
  /** The vsock port (see the class comment for which one). */
  readonly port: number;

  /** Validates and builds an address; a relative `path` is resolved against the current directory now. */
  constructor(path: string, port_: number) {
    this.path = socketPath(path, "path");
    this.port = port(port_);
  }

  /**
   * Reads `unix:///absolute/path?port=N` (scheme case-insensitive, path
   * percent-decoded, `N` decimal or `*`). Anything else — another scheme, a
   * host or relative path after `unix://`, no port, a port given twice, other
   * query parameters, a fragment — is a `TypeError` naming the problem.
   */
  static parse(text: string): HybridAddr {
    if (typeof text !== "string") throw new TypeError(`hybrid vsock address must be a string, got ${typeof text}`);
    const input = text.trim();
    if (input.slice(0, SCHEME.length).toLowerCase() !== SCHEME) {
      throw new TypeError(
        `hybrid vsock address "${text}" must start with ${SCHEME} (e.g. unix:///run/vm1/v.sock?port=52)`,
      );
    }
    const rest = input.slice(SCHEME.length);
    if (!rest.startsWith("/")) {
      throw new TypeError(
        `hybrid vsock address "${text}" needs an absolute path after unix:// (three slashes: unix:///run/vm1/v.sock?port=52)`,
      );
    }
    if (rest.includes("#")) throw new TypeError(`hybrid vsock address "${text}" must not have a #fragment`);
    const q = rest.indexOf("?");
    if (q < 0) throw new TypeError(`hybrid vsock address "${text}" has no ?port=N`);
    let path: string;
    try {
      path = decodeURIComponent(rest.slice(0, q));
    } catch {
      throw new TypeError(`hybrid vsock address "${text}" has a malformed %-escape in its path`);
    }
    let found: number | undefined;
    for (const param of rest.slice(q + 1).split("&")) {
      const eq = param.indexOf("=");
      const name = eq < 0 ? param : param.slice(0, eq);
      const value = eq < 0 ? "" : param.slice(eq + 1);
      if (name !== "port") throw new TypeError(`unknown hybrid vsock address option "${param}" in "${text}"`);
      if (found !== undefined) throw new TypeError(`hybrid vsock address "${text}" gives the port more than once`);
      if (value === "*") found = VMADDR_PORT_ANY;
      else if (/^\d+$/.test(value) && Number(value) <= U32_MAX) found = Number(value);
      else throw new TypeError(`invalid hybrid vsock port "${value}" in "${text}" (a decimal number up to ${U32_MAX})`);
    }
    if (found === undefined) throw new TypeError(`hybrid vsock address "${text}" has no ?port=N`);
    return new HybridAddr(path, found);
  }

  /** `${path}_${port}`: where the VMM connects when the guest dials host port `port` (Firecracker docs/vsock.md). */
  get listenPath(): string {
    return `${this.path}_${this.port}`;
  }

  /** The `sockaddr_un` of {@link path}, for `connect`. */
  toBytes(): Uint8Array {
    return sockaddrUn(this.path);
  }

  /** Same path and port. */
  equals(other: HybridAddr): boolean {
    return other instanceof HybridAddr && other.path === this.path && other.port === this.port;
  }

  /** The canonical `unix:///path?port=N` form, which {@link HybridAddr.parse} reads back. */
  toString(): string {
    const path = encodeURI(this.path).replace(/[?#]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    return `${SCHEME}${path}?port=${this.port === VMADDR_PORT_ANY ? "*" : this.port}`;
  }
}

/** Whether `text` is meant as a hybrid address (`unix:` scheme), so `connect`/`listen` route it here. */
export function isHybridString(text: string): boolean {
  return text.trim().slice(0, 5).toLowerCase() === "unix:";
}
