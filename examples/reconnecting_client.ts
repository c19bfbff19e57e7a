/**
 * A client that survives its server restarting (or a live migration, which
 * breaks vsock connections and may change the local CID): on an error that
 * means "reconnect" it backs off exponentially with jitter and reconnects.
 * Runs as written on Bun and Deno:
 *
 *   bun examples/reconnecting_client.ts vsock://1:5000 [COUNT]
 *   deno run --allow-ffi examples/reconnecting_client.ts vsock://2:5000
 *   bun examples/reconnecting_client.ts 'unix:///run/vm1/v.sock?port=5000'   # a Firecracker guest
 *
 * Sends a numbered line every 100 ms to an echo server and prints each echo;
 * exits after COUNT echoes (default: never).
 */
import process from "node:process";
import { connect, type HybridAddr, localCid, shouldReconnect, type VsockAddr, type VsockConn } from "../mod.ts";

const [address, countText] = process.argv.slice(2);
if (!address) throw new Error("usage: reconnecting_client.ts vsock://CID:PORT|unix:///PATH?port=PORT [COUNT]");
const count = countText ? Number(countText) : Infinity;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Connects, retrying with exponential backoff (100 ms doubling to 5 s, ±20% jitter). */
async function connectWithBackoff(): Promise<VsockConn<VsockAddr | HybridAddr>> {
  for (let attempt = 0;; attempt++) {
    try {
      const conn = await connect(address);
      console.log(`connected to ${conn.remoteAddr} (local CID ${localCid()})`);
      return conn;
    } catch (error) {
      if (!shouldReconnect(error)) throw error;
      const delay = Math.min(5000, 100 * 2 ** attempt) * (0.8 + Math.random() * 0.4);
      console.log(`connect failed (${(error as { code: string }).code}); retrying in ${Math.round(delay)} ms`);
      await sleep(delay);
    }
  }
}

let echoed = 0;
let conn = await connectWithBackoff();
const buf = new Uint8Array(100);
while (echoed < count) {
  try {
    await conn.writeAll(new TextEncoder().encode(`line ${echoed}\n`));
    const n = await conn.read(buf);
    if (n === null) throw Object.assign(new Error("server closed the connection"), { code: "ECONNRESET" });
    console.log(`echo: ${new TextDecoder().decode(buf.subarray(0, n)).trim()}`);
    echoed++;
    await sleep(100);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (!shouldReconnect(error) && code !== "ECONNRESET") throw error;
    console.log(`connection lost (${code}); reconnecting`);
    conn.close();
    conn = await connectWithBackoff();
  }
}
conn.close();
