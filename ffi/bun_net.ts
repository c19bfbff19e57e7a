/**
 * A connected vsock fd as a `node:net` socket of Bun's own: Bun's `node:net`
 * adopts a foreign fd given to `connect({ fd })` (through `Bun.connect({ fd })`
 * underneath), so Bun's `node:http` server reads and writes it natively. In
 * the test VM `serve()` answered 1.16-1.23x the requests per second this way
 * with 64 KiB bodies, and the same with 64 B ones, as through a `Duplex` over
 * this library's stream (README, Benchmarks).
 *
 * @module
 */
/// <reference types="bun-types" />
import process from "node:process";
import type { NetConnectOpts, Socket } from "node:net";

/** See the module comment. `node:net` is fetched on first use, so the core never loads it. */
export function adoptNetSocket(fd: number): Socket {
  const net = process.getBuiltinModule("node:net") as typeof import("node:net");
  const socket = new net.Socket();
  // `new net.Socket({ fd })` fails on Bun ("Socket is closed"); connect({ fd }) adopts it. Not in @types/node.
  socket.connect({ fd } as unknown as NetConnectOpts);
  return socket;
}
