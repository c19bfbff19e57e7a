import { createHttpClient, fetch, serve } from "../http.ts";

// Every CID, a port the kernel picks; only CID 1 (this machine) may call. From a guest, allow the host's CID 2.
const server = serve({ allowCids: [1] }, (req, info) => {
  // info.remoteAddr.cid is who is calling: the hypervisor assigns CIDs, a guest cannot forge one.
  return Response.json({ path: new URL(req.url).pathname, from: info.remoteAddr.cid });
});

// One-off requests: Web fetch with a vsock:// URL (connections are pooled per address).
const res = await fetch(`vsock://1:${server.addr.port}/health`, { timeout: 2000 });
console.log(await res.json()); // { path: "/health", from: 1 }

// A keep-alive pool to one address; it takes every option connect() takes.
using client = createHttpClient({ cid: 1, port: server.addr.port });
const reply = await client.fetch("/v1/exec", { method: "POST", body: JSON.stringify({ argv: ["true"] }) });
console.log(reply.status); // 200

await server.shutdown(); // stop accepting, let requests in flight finish, close idle connections
