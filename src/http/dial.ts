/**
 * How the HTTP client's pool gets a connection for `node:http`'s client to
 * write to — the client-side twin of `served.ts`:
 *
 * - **native** (Bun, `AF_VSOCK` targets): the connected fd goes straight to
 *   the runtime's own `node:net`, so its `node:http` client reads and writes
 *   the socket itself (measured in the test VM, README, Benchmarks).
 * - **bridged** (everywhere else, and hybrid vsock): `connect()`'s connection
 *   wrapped in a {@link ConnDuplex}.
 *
 * @module
 */
import type { Duplex } from "node:stream";
import { connect, connectFd, isHybridTarget, type StreamConnectTarget } from "../connect.ts";
import { ConnDuplex } from "../conn_duplex.ts";
import { adoptsNetSocket, openNetSocket } from "../socket.ts";

/** One new connection to `target`, as the stream `node:http`'s client is handed; rejects as `connect()` does. */
export async function dial(target: StreamConnectTarget): Promise<Duplex> {
  if (adoptsNetSocket && !isHybridTarget(target)) {
    return openNetSocket(await connectFd(target));
  }
  return new ConnDuplex(await connect(target));
}
