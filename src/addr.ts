/**
 * `VsockAddr`: a vsock address (CID, port, flags) and its 16-byte
 * `struct sockaddr_vm` form.
 *
 * @module
 */
import {
  AF_VSOCK,
  SOCKADDR_VM_SIZE,
  VMADDR_CID_ANY,
  VMADDR_CID_HOST,
  VMADDR_CID_HYPERVISOR,
  VMADDR_CID_LOCAL,
  VMADDR_FLAG_TO_HOST,
  VMADDR_PORT_ANY,
} from "./constants.ts";
import { readU16, readU32, writeU16, writeU32 } from "./host_order.ts";

const U32_MAX = 0xffffffff;

const CID_WORDS: Record<string, number> = {
  "*": VMADDR_CID_ANY,
  any: VMADDR_CID_ANY,
  hypervisor: VMADDR_CID_HYPERVISOR,
  local: VMADDR_CID_LOCAL,
  host: VMADDR_CID_HOST,
};

/** Checks that `value` is a u32; `what` names it in the error. */
function u32(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`vsock ${what} must be an integer, got ${String(value)}`);
  }
  if (value < 0 || value > U32_MAX) {
    throw new RangeError(`vsock ${what} must be between 0 and ${U32_MAX}, got ${value}`);
  }
  return value;
}

/** Parses one decimal u32 (or a word from `words`) out of address text. */
function parsePart(text: string, what: string, words: Record<string, number>, input: string): number {
  const word = words[text.toLowerCase()];
  if (word !== undefined) return word;
  if (!/^\d+$/.test(text)) throw new TypeError(`invalid vsock ${what} "${text}" in "${input}"`);
  const value = Number(text);
  if (value > U32_MAX) throw new RangeError(`vsock ${what} ${text} is larger than ${U32_MAX} in "${input}"`);
  return value;
}

/**
 * A vsock address: context id (CID) and port, plus the `VMADDR_FLAG_TO_HOST`
 * flag. Structurally a `Deno.VsockAddr`, so it can go wherever Deno's own
 * vsock API takes one.
 *
 * @example
 * ```ts
 * const addr = VsockAddr.parse("vsock://local:5000");
 * addr.cid;        // 1
 * addr.toString(); // "vsock://1:5000"
 * ```
 */
export class VsockAddr {
  /** Always `"vsock"`, as in `Deno.VsockAddr`. */
  readonly transport = "vsock" as const;
  /** Context id: 1 is this machine (loopback), 2 the host, `VMADDR_CID_ANY` any. */
  readonly cid: number;
  /** Port; `VMADDR_PORT_ANY` lets the kernel pick. */
  readonly port: number;
  /** Whether `svm_flags` carries `VMADDR_FLAG_TO_HOST` (nested VMs: forward to the host). */
  readonly toHost: boolean;

  /** Validates and builds an address. Throws `TypeError`/`RangeError` naming the bad part. */
  constructor(cid: number, port: number, toHost = false) {
    this.cid = u32(cid, "CID");
    this.port = u32(port, "port");
    if (typeof toHost !== "boolean") throw new TypeError(`vsock toHost must be a boolean, got ${String(toHost)}`);
    this.toHost = toHost;
  }

  /**
   * Reads `vsock://CID:PORT` or `CID:PORT`. CID is a number or `*`/`any`,
   * `local`, `host`, `hypervisor`; PORT a number or `*`; `?to_host` sets the flag.
   */
  static parse(text: string): VsockAddr {
    if (typeof text !== "string") throw new TypeError(`vsock address must be a string, got ${typeof text}`);
    let rest = text.trim();
    if (rest.toLowerCase().startsWith("vsock://")) rest = rest.slice("vsock://".length);
    let toHost = false;
    const q = rest.indexOf("?");
    if (q >= 0) {
      const query = rest.slice(q + 1);
      rest = rest.slice(0, q);
      for (const param of query.split("&")) {
        if (param === "to_host" || param === "to_host=1" || param === "to_host=true") toHost = true;
        else if (param !== "" && param !== "to_host=0" && param !== "to_host=false") {
          throw new TypeError(`unknown vsock address option "${param}" in "${text}"`);
        }
      }
    }
    const colon = rest.lastIndexOf(":");
    if (colon < 0) throw new TypeError(`vsock address "${text}" is not CID:PORT`);
    const cid = parsePart(rest.slice(0, colon), "CID", CID_WORDS, text);
    const port = parsePart(rest.slice(colon + 1), "port", { "*": VMADDR_PORT_ANY, any: VMADDR_PORT_ANY }, text);
    return new VsockAddr(cid, port, toHost);
  }

  /** Unpacks a 16-byte `sockaddr_vm` (host byte order); rejects a wrong length or family. */
  static fromBytes(bytes: Uint8Array): VsockAddr {
    if (!(bytes instanceof Uint8Array)) throw new TypeError("sockaddr_vm must be a Uint8Array");
    if (bytes.byteLength !== SOCKADDR_VM_SIZE) {
      throw new RangeError(`sockaddr_vm must be ${SOCKADDR_VM_SIZE} bytes, got ${bytes.byteLength}`);
    }
    // sockaddr_vm is in host byte order.
    const family = readU16(bytes, 0);
    if (family !== AF_VSOCK) throw new TypeError(`not a vsock address: family ${family}, expected ${AF_VSOCK}`);
    return new VsockAddr(readU32(bytes, 8), readU32(bytes, 4), (bytes[12] & VMADDR_FLAG_TO_HOST) !== 0);
  }

  /** Packs the 16-byte `struct sockaddr_vm` the kernel takes, in host byte order. */
  toBytes(): Uint8Array {
    const bytes = new Uint8Array(SOCKADDR_VM_SIZE);
    writeU16(bytes, 0, AF_VSOCK); // svm_family
    // @2 svm_reserved1 stays 0
    writeU32(bytes, 4, this.port); // svm_port
    writeU32(bytes, 8, this.cid); // svm_cid
    bytes[12] = this.toHost ? VMADDR_FLAG_TO_HOST : 0; // svm_flags; 13..15 svm_zero
    return bytes;
  }

  /** Same CID, port and flag. */
  equals(other: VsockAddr): boolean {
    return other instanceof VsockAddr && other.cid === this.cid && other.port === this.port &&
      other.toHost === this.toHost;
  }

  /** The canonical `vsock://CID:PORT` form (`*` for ANY), which {@link VsockAddr.parse} reads back. */
  toString(): string {
    const cid = this.cid === VMADDR_CID_ANY ? "*" : String(this.cid);
    const port = this.port === VMADDR_PORT_ANY ? "*" : String(this.port);
    return `vsock://${cid}:${port}${this.toHost ? "?to_host" : ""}`;
  }
}
