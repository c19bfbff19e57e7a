/**
 * The http benchmark's servers, one handler for all (test/peers/http_load.c is the client):
 * a POST gets its body echoed, a GET gets a fixed 64-byte body. Prints `ready PORT`.
 *
 *   http_server.ts vsock        this library's `serve()` over vsock, on whichever runtime runs it
 *   http_server.ts tcp          the runtime's own HTTP server on 127.0.0.1: `Bun.serve` or `Deno.serve` (the floor)
 *   http_server.ts deno-vsock   Deno's native `Deno.serve({ transport: "vsock" })` (--unstable-vsock)
 *   http_server.ts node-http-tcp  the floor of serve()'s design on this runtime: its own `node:http` server
 *                               on 127.0.0.1 with serve()'s Request/Response conversion (srvx's NodeRequest,
 *                               our sendResponse), no vsock and no bridge: ours / this = the vsock layer's cost
 */
/// <reference types="bun-types" />
import process from "node:process";

const GET_BODY = new Uint8Array(64).fill(0x67);

async function handler(req: Request): Promise<Response> {
  return new Response(req.method === "POST" ? await req.arrayBuffer() : GET_BODY);
}

const ready = (port: number): void => console.log(`ready ${port}`);
const mode = process.argv[2];

if (mode === "vsock") {
  // Imported here so that the baselines do not load (or need permissions for) srvx. No port: the kernel picks.
  const { serve } = await import("../http.ts");
  serve({ onListen: (addr) => ready(addr.port) }, handler);
} else if (mode === "tcp") {
  if ("Bun" in globalThis) ready(Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handler }).port!);
  else Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: (addr) => ready(addr.port) }, handler);
} else if (mode === "node-http-tcp") {
  const { createServer } = await import("node:http");
  const { NodeRequest } = await import("srvx/node");
  const { sendResponse } = await import("../src/http/send_response.ts");
  const server = createServer((req, res) => {
    // As serve() does: a failed answer ends that connection, never the process.
    handler(new NodeRequest({ req, res }) as unknown as Request)
      .then((response) => sendResponse(req, res, response))
      .catch(() => res.destroy());
  });
  server.listen(0, "127.0.0.1", () => ready((server.address() as { port: number }).port));
} else if (mode === "deno-vsock") {
  // Port 0 is a real vsock port (the kernel's "any" is 0xFFFFFFFF); Deno binds and reports it as given.
  Deno.serve({
    transport: "vsock",
    cid: 1,
    port: 0,
    onListen: (addr) => ready((addr as Deno.VsockAddr).port),
  }, handler);
} else {
  throw new Error(`unknown mode ${mode}: vsock, tcp, node-http-tcp or deno-vsock`);
}
