/**
 * Endpoint text of the command line tool: what each command listens on or dials.
 *
 * - `vsock:CID:PORT` — CID a number or `local`, `host`, `hypervisor`, `any`/`*` (as `VsockAddr.parse`)
 * - `vsock:PORT` — the same with CID `any` (listen on every transport)
 * - `tcp:HOST:PORT`, `tcp:[IPV6]:PORT`, `tcp:PORT` (HOST `127.0.0.1`)
 * - `unix:PATH` — a plain Unix domain socket
 * - `unix:///PATH?port=N` — hybrid vsock: the guest's port `N` behind a
 *   Firecracker / Cloud Hypervisor VMM socket (dialing), or the host port `N`
 *   guests dial, served on `PATH_N` (listening); as `HybridAddr.parse` reads it
 *
 * A new transport is one more member of {@link Endpoint}, one more branch in
 * {@link parseEndpoint}, and one branch each in `transport.ts`'s `dial` and `serve`.
 *
 * @module
 */
import { VsockAddr } from "../src/addr.ts";
import { HybridAddr } from "../src/hybrid/addr.ts";
import { UsageError } from "./usage_error.ts";

/** A parsed endpoint. */
export type Endpoint =
  | { kind: "vsock"; cid: number; port: number }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "unix"; path: string }
  | { kind: "hybrid"; path: string; port: number };

const FORMS = "vsock:CID:PORT, vsock:PORT, tcp:HOST:PORT, tcp:PORT, unix:PATH or unix:///PATH?port=N";

function tcpPort(text: string, input: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) {
    throw new UsageError(`bad endpoint "${input}": TCP port must be a number from 0 to 65535, got "${text}"`);
  }
  return Number(text);
}

/** Parses endpoint text; throws a {@link UsageError} naming the bad part. */
export function parseEndpoint(text: string): Endpoint {
  const colon = text.indexOf(":");
  const scheme = colon < 0 ? "" : text.slice(0, colon).toLowerCase();
  const rest = text.slice(colon + 1);
  switch (scheme) {
    case "vsock": {
      if (rest.startsWith("//")) throw new UsageError(`bad endpoint "${text}": write vsock:CID:PORT, not a URL`);
      const parts = rest.split(":");
      if (parts.length > 2 || rest === "") {
        throw new UsageError(`bad endpoint "${text}": expected vsock:CID:PORT or vsock:PORT`);
      }
      const [cid, port] = parts.length === 2 ? parts : ["any", parts[0]];
      try {
        const addr = VsockAddr.parse(`${cid}:${port}`);
        return { kind: "vsock", cid: addr.cid, port: addr.port };
      } catch (error) {
        throw new UsageError(`bad endpoint "${text}": ${(error as Error).message.replace(/ in ".*"$/, "")}`);
      }
    }
    case "tcp": {
      const bracket = /^\[([^\]]+)\]:([^:]*)$/.exec(rest);
      if (bracket) return { kind: "tcp", host: bracket[1], port: tcpPort(bracket[2], text) };
      const last = rest.lastIndexOf(":");
      if (last < 0) return { kind: "tcp", host: "127.0.0.1", port: tcpPort(rest, text) };
      const host = rest.slice(0, last);
      if (host === "" || host.includes(":")) {
        throw new UsageError(`bad endpoint "${text}": expected tcp:HOST:PORT (IPv6 as tcp:[ADDR]:PORT)`);
      }
      return { kind: "tcp", host, port: tcpPort(rest.slice(last + 1), text) };
    }
    case "unix":
      if (rest === "") throw new UsageError(`bad endpoint "${text}": expected unix:PATH`);
      if (rest.startsWith("//")) {
        // unix://... is the hybrid vsock URL form; a plain socket path never starts with two slashes here.
        try {
          const addr = HybridAddr.parse(text);
          return { kind: "hybrid", path: addr.path, port: addr.port };
        } catch (error) {
          throw new UsageError(`bad endpoint "${text}": ${(error as Error).message}`);
        }
      }
      return { kind: "unix", path: rest };
    default:
      throw new UsageError(`bad endpoint "${text}": expected ${FORMS}`);
  }
}

/** The endpoint as text that {@link parseEndpoint} reads back. */
export function formatEndpoint(endpoint: Endpoint): string {
  switch (endpoint.kind) {
    case "vsock":
      return `vsock:${endpoint.cid === 0xffffffff ? "any" : endpoint.cid}:${endpoint.port}`;
    case "tcp":
      return `tcp:${endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
    case "unix":
      return `unix:${endpoint.path}`;
    case "hybrid":
      return new HybridAddr(endpoint.path, endpoint.port).toString();
  }
}
