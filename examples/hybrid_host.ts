/**
 * The host side of a Firecracker / Cloud Hypervisor microVM, talking to its
 * guest over hybrid vsock (the VMM's vsock Unix socket). Runs as written on
 * Bun and Deno:
 *
 *   bun examples/hybrid_host.ts dial /run/vm1/v.sock 52 "hello"   # send a line to guest port 52, print the answer
 *   bun examples/hybrid_host.ts serve /run/vm1/v.sock 1234        # echo what guests send to host port 1234
 *   deno run --allow-ffi --allow-read --allow-write examples/hybrid_host.ts ...
 *
 * `dial` retries for a few seconds while the guest agent is still booting.
 */
import process from "node:process";
import { connect, listen } from "../mod.ts";

const [mode, uds, portText, message = "hello"] = process.argv.slice(2);
const port = Number(portText);
if ((mode !== "dial" && mode !== "serve") || !uds || !Number.isInteger(port)) {
  throw new Error("usage: hybrid_host.ts dial UDS PORT [MESSAGE] | serve UDS PORT");
}

if (mode === "dial") {
  using conn = await connect({ uds, port, retries: 5, timeout: 10_000 });
  console.log(`connected to ${conn.remoteAddr} (the VMM gave us host port ${conn.localAddr.port})`);
  await conn.writeAll(new TextEncoder().encode(`${message}\n`));
  // Not closeWrite(): Firecracker would close the whole connection before the answer.
  let answer = "";
  const buf = new Uint8Array(4096);
  while (!answer.includes("\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    answer += new TextDecoder().decode(buf.subarray(0, n));
  }
  console.log(`answer: ${answer.trim()}`);
} else {
  using listener = listen({ uds, port });
  console.log(`listening on ${listener.path} for guest connections to host port ${port}`);
  for await (const conn of listener) {
    conn.readable.pipeTo(conn.writable).catch((error) => console.error(`${conn.localAddr}: ${error}`));
  }
}
