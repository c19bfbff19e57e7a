/**
 * Independent HTTP peers: Deno's own vsock HTTP (no code of ours).
 *
 *   deno run --unstable-vsock --allow-net deno_http.ts server
 *     Deno.serve({ transport: "vsock" }) on CID 1, a free port; prints "ready PORT".
 *     GET /hello → JSON; POST /echo → the body back; GET /stream → three chunks.
 *   deno run --allow-net deno_http.ts client PORT
 *     Deno.createHttpClient({ proxy: { transport: "vsock", cid: 1, port } }) (absolute-form
 *     request lines): three GETs and a 1 MiB POST to /echo; prints one JSON line.
 */
import { createHash } from "node:crypto";
import { pattern } from "../e2e/data.ts";

const [mode, port] = Deno.args;

if (mode === "server") {
  Deno.serve({
    transport: "vsock",
    cid: 1,
    port: 0,
    onListen: (addr) => console.log(`ready ${(addr as Deno.VsockAddr).port}`),
  }, async (req) => {
    const url = new URL(req.url);
    if (req.method === "POST") return new Response(await req.arrayBuffer());
    if (url.pathname === "/stream") {
      let i = 0;
      return new Response(
        new ReadableStream({
          pull(c) {
            if (i === 3) return c.close();
            c.enqueue(new TextEncoder().encode(`part${i++};`));
          },
        }),
      );
    }
    return Response.json({ path: url.pathname + url.search, host: req.headers.get("host") });
  });
} else if (mode === "client") {
  const client = Deno.createHttpClient({ proxy: { transport: "vsock", cid: 1, port: Number(port) } });
  // deno.json's "dom" lib types fetch() without Deno's `client` field.
  const withClient = (init: RequestInit = {}): RequestInit => ({ ...init, client }) as RequestInit;
  // Made before the first request: computing it takes seconds in a loaded VM,
  // long enough for the server's 5 s keep-alive timeout to close the idle connection.
  const data = pattern(1024 * 1024);
  const gets = [];
  for (const path of ["/a", "/b?x=1", "/c"]) {
    const res = await fetch(`http://agent${path}`, withClient());
    gets.push([res.status, await res.json()]);
  }
  const res = await fetch("http://agent/echo", withClient({ method: "POST", body: data as Uint8Array<ArrayBuffer> }));
  const body = new Uint8Array(await res.arrayBuffer());
  const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  console.log(JSON.stringify({ gets, echo: [res.status, body.length, hex(body), hex(data)] }));
  client.close();
} else {
  throw new Error(`unknown mode ${mode}`);
}
