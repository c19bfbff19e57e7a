/**
 * This library as a benchmark client, on whichever runtime runs it; same
 * modes and output as test/peers/vsock_peer.c so the numbers compare.
 *
 *   bun bench/client.ts pingpong CID PORT ROUNDS SIZE   -> microseconds per round trip
 *   deno run --allow-ffi bench/client.ts stream CID PORT BYTES CHUNK   -> MiB/s
 */
import process from "node:process";
import { connect } from "../mod.ts";

const [mode, cid, port, count, size] = process.argv.slice(2);
const conn = await connect({ cid: Number(cid), port: Number(port) });

async function readExact(buf: Uint8Array): Promise<void> {
  for (let got = 0; got < buf.length;) {
    const n = await conn.read(got === 0 ? buf : buf.subarray(got));
    if (n === null) throw new Error("unexpected EOF");
    got += n;
  }
}

if (mode === "pingpong") {
  const rounds = Number(count);
  const msg = new Uint8Array(Number(size));
  const reply = new Uint8Array(Number(size));
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    await conn.writeAll(msg);
    await readExact(reply);
  }
  console.log((((performance.now() - t0) * 1000) / rounds).toFixed(2));
} else if (mode === "stream") {
  const total = Number(count);
  const chunk = new Uint8Array(Number(size));
  const t0 = performance.now();
  for (let sent = 0; sent < total; sent += chunk.length) await conn.writeAll(chunk);
  await conn.closeWrite();
  const ack = new Uint8Array(8);
  await readExact(ack);
  const got = Number(new DataView(ack.buffer).getBigUint64(0, true));
  if (got !== total) throw new Error(`sink counted ${got} of ${total}`);
  console.log((total / 1048576 / ((performance.now() - t0) / 1000)).toFixed(1));
} else {
  throw new Error(`unknown mode ${mode}`);
}
conn.close();
