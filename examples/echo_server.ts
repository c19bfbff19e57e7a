/**
 * Echo server over vsock; runs as written on Bun, Deno and Node:
 *
 *   bun examples/echo_server.ts [PORT] [--once]
 *   deno run --allow-ffi examples/echo_server.ts [PORT] [--once]
 *
 * Without PORT the kernel picks one. Prints `listening vsock://*:PORT`, then
 * one line per connection with what crossed. `--once` exits after the first.
 */
import process from "node:process";
import { listen, VMADDR_PORT_ANY, type VsockConn } from "../mod.ts";

const args = process.argv.slice(2);
const once = args.includes("--once");
const port = Number(args.find((a) => !a.startsWith("--")) ?? VMADDR_PORT_ANY);
const runtime = navigator.userAgent;

async function echo(conn: VsockConn): Promise<number> {
  let bytes = 0;
  const buf = new Uint8Array(64 * 1024);
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
    await conn.writeAll(buf.subarray(0, n));
    bytes += n;
  }
  await conn.closeWrite();
  return bytes;
}

const listener = listen({ port });
console.log(`listening ${listener.addr}`);
for await (const conn of listener) {
  const served = echo(conn).then(
    (bytes) => console.log(`[${runtime}] echoed ${bytes} bytes to ${conn.remoteAddr}`),
    (error) => console.error(`[${runtime}] ${conn.remoteAddr}: ${error.message}`),
  ).finally(() => conn.close());
  if (once) {
    await served;
    listener.close();
  }
}
