/**
 * Echo client over vsock; runs as written on Bun, Deno and Node:
 *
 *   bun examples/echo_client.ts ADDRESS [MESSAGE | --bytes N]
 *   deno run --allow-ffi examples/echo_client.ts vsock://1:5000 "hello"
 *
 * Sends MESSAGE (or N random bytes), half-closes, reads the echo to the end
 * and prints it (or, with --bytes, `BYTES SENT_SHA256 RECEIVED_SHA256`).
 */
import { createHash, randomBytes } from "node:crypto";
import process from "node:process";
import { connect } from "../mod.ts";

const [address, ...rest] = process.argv.slice(2);
if (!address) throw new Error("usage: echo_client.ts vsock://CID:PORT [MESSAGE | --bytes N]");
const count = rest[0] === "--bytes" ? Number(rest[1]) : undefined;
const payload = count === undefined
  ? new TextEncoder().encode(rest.join(" ") || "hello over vsock")
  : randomBytes(count);

using conn = await connect(address);
const sending = conn.writeAll(payload).then(() => conn.closeWrite());
const hash = createHash("sha256");
const chunks: Uint8Array[] = [];
let total = 0;
for await (const chunk of conn.readable) {
  hash.update(chunk);
  if (count === undefined) chunks.push(chunk);
  total += chunk.byteLength;
}
await sending;
if (count === undefined) {
  const decoder = new TextDecoder();
  const text = chunks.map((chunk) => decoder.decode(chunk, { stream: true })).join("") + decoder.decode();
  console.log(
    `[${navigator.userAgent}] ${conn.localAddr} -> ${conn.remoteAddr}: sent "${
      new TextDecoder().decode(payload)
    }", got back "${text}"`,
  );
} else {
  console.log(total, createHash("sha256").update(payload).digest("hex"), hash.digest("hex"));
}
