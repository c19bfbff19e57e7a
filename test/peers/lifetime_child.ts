/**
 * A child for the process-lifetime tests, run on each runtime:
 * - `idle`: a listener and a connection that have done one round trip and
 *   are left open, idle; the process must exit by itself.
 * - `pending`: a pending accept, then a pending read; these must keep the
 *   process alive until the parent connects and writes.
 */
import process from "node:process";
import { connect, listen } from "../../mod.ts";

const mode = process.argv[2];
const listener = listen();
if (mode === "idle") {
  const client = await connect({ cid: 1, port: listener.addr.port });
  const server = await listener.accept();
  await server.writeAll(new Uint8Array([7]));
  const one = new Uint8Array(1);
  console.log(`round trip ${await client.read(one)} byte, now idle`);
  // Left open on purpose: idle sockets must not hold the process.
} else if (mode === "pending") {
  console.log(`waiting ${listener.addr.port}`);
  const conn = await listener.accept();
  console.log("accepted");
  console.log(`read ${await conn.read(new Uint8Array(8))}`);
  conn.close();
  listener.close();
} else {
  throw new TypeError(`mode must be idle or pending, got ${mode}`);
}
