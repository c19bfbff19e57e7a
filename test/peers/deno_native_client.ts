/**
 * Independent peer: Deno's own `--unstable-vsock` client (no code of ours).
 * Usage: deno run --unstable-vsock --allow-net deno_native_client.ts CID PORT N
 * Sends N pattern bytes, half-closes, reads to EOF, prints "BYTES SHA256".
 */
import { createHash } from "node:crypto";
import { pattern } from "../e2e/data.ts";

const [cid, port, n] = Deno.args.map(Number);
const conn = await Deno.connect({ transport: "vsock", cid, port });
const sending = (async () => {
  const data = pattern(n);
  for (let done = 0; done < data.length;) done += await conn.write(data.subarray(done));
  await conn.closeWrite();
})();
const hash = createHash("sha256");
let total = 0;
for await (const chunk of conn.readable) {
  hash.update(chunk);
  total += chunk.length;
}
await sending;
console.log(total, hash.digest("hex"));
