/**
 * The fetch benchmark's clients (the server is Deno's own `Deno.serve`, on vsock or on TCP; bench/run.sh):
 *
 *   http_client.ts ours PORT CONNS REQUESTS BODY         this library's createHttpClient() over vsock CID 1
 *   http_client.ts deno-vsock PORT CONNS REQUESTS BODY   Deno's own fetch through createHttpClient's vsock proxy
 *   http_client.ts tcp PORT CONNS REQUESTS BODY          the runtime's own fetch() to 127.0.0.1
 *   http_client.ts nodehttp-tcp PORT CONNS REQUESTS BODY the runtime's own node:http client to 127.0.0.1 with a
 *                                                        keep-alive Agent: the floor of createHttpClient()'s
 *                                                        design (node:http underneath), without vsock or bridge
 *
 * Like test/peers/http_load.c: CONNS keep-alive connections, REQUESTS requests in all, one at a time per
 * connection, each a POST of BODY bytes echoed back (a GET, answered with 64 bytes, when BODY is 0), every
 * answer checked for its status and length; a warm-up of 3 requests per connection first. Prints
 * "REQ_PER_S P50_US P99_US" (latency per request, from the call to the last byte of the body).
 */
/// <reference types="bun-types" />
import process from "node:process";

const [mode, portText, connsText, requestsText, bodyText] = process.argv.slice(2);
const port = Number(portText);
const conns = Number(connsText);
const requests = Number(requestsText);
const bodySize = Number(bodyText);
const WARMUP = 3;
const body = new Uint8Array(bodySize).fill(0x62);
const expected = bodySize === 0 ? 64 : bodySize;

type Fetch = (path: string, init: RequestInit) => Promise<Response>;

async function client(): Promise<Fetch> {
  if (mode === "ours") {
    const { createHttpClient } = await import("../http.ts");
    const ours = createHttpClient({ cid: 1, port }, { maxSockets: conns });
    return (path, init) => ours.fetch(path, init);
  }
  if (mode === "deno-vsock") {
    const http = Deno.createHttpClient({ proxy: { transport: "vsock", cid: 1, port } });
    // deno.json's "dom" lib types fetch() without Deno's `client` field.
    return (path, init) => fetch(`http://agent${path}`, { ...init, client: http } as RequestInit);
  }
  if (mode === "tcp") return (path, init) => fetch(`http://127.0.0.1:${port}${path}`, init);
  if (mode === "nodehttp-tcp") return await nodeHttp();
  throw new Error(`unknown mode ${mode}: ours, deno-vsock, tcp or nodehttp-tcp`);
}

/** node:http's client on TCP, its answer read whole into a Response (status and body, what one() checks). */
async function nodeHttp(): Promise<Fetch> {
  const { Agent, request } = await import("node:http");
  const agent = new Agent({ keepAlive: true, maxSockets: conns });
  return (path, init) =>
    new Promise<Response>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path, method: init.method, agent }, (res) => {
        const chunks: Uint8Array[] = [];
        res.on("data", (chunk: Uint8Array) => chunks.push(chunk));
        res.on("end", () => resolve(new Response(new Blob(chunks as BlobPart[]), { status: res.statusCode })));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(init.body as Uint8Array | undefined);
    });
}

const request: RequestInit = bodySize === 0 ? { method: "GET" } : { method: "POST", body: body as Uint8Array<ArrayBuffer> };

async function one(send: Fetch, latencies: number[] | null): Promise<void> {
  const t0 = performance.now();
  const response = await send("/", request);
  const got = (await response.arrayBuffer()).byteLength;
  if (response.status !== 200 || got !== expected) {
    throw new Error(`http_client: status ${response.status} with ${got} bytes, expected 200 with ${expected}`);
  }
  latencies?.push((performance.now() - t0) * 1000);
}

const send = await client();
// Each loop is one connection's worth of requests in turn; `conns` loops at once open `conns` connections.
await Promise.all(Array.from({ length: conns }, async () => {
  for (let i = 0; i < WARMUP; i++) await one(send, null);
}));
const latencies: number[] = [];
const t0 = performance.now();
await Promise.all(Array.from({ length: conns }, async (_, c) => {
  for (let i = c; i < requests; i += conns) await one(send, latencies);
}));
const seconds = (performance.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
console.log(`${(requests / seconds).toFixed(0)} ${at(0.5).toFixed(0)} ${at(0.99).toFixed(0)}`);
process.exit(0);
