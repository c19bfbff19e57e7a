/**
 * A guest agent's HTTP API over vsock — what a microVM's agent exposes to its
 * host control plane. Runs as written on every supported runtime:
 *
 *   bun examples/http_agent.ts [PORT]
 *   deno run --allow-ffi --allow-sys --allow-run --allow-env examples/http_agent.ts [PORT]
 *   node --disable-warning=ExperimentalWarning examples/http_agent.ts [PORT]
 *
 * (`--allow-run --allow-env` are for /v1/exec: a child process gets the
 * agent's environment; `--allow-sys` for the hostname and uptime.)
 *
 * Without PORT the kernel picks one. Only the host (CID 2) and this machine
 * (CID 1, for trying it out) may call it: vsock CIDs cannot be forged from
 * inside a guest, so the allow-list is real access control.
 *
 *   GET  /health           {"ok":true}
 *   GET  /v1/info          this machine's CID, hostname, uptime, and who asked
 *   POST /v1/exec          {"argv":["uname","-r"]} → {"code":0,"stdout":"…","stderr":""}
 *
 * SIGINT/SIGTERM shut it down gracefully (requests in flight finish).
 * Call it with examples/http_agent_client.ts.
 */
import { execFile } from "node:child_process";
import { hostname, uptime } from "node:os";
import process from "node:process";
import { serve } from "../http.ts";
import { localCid, VMADDR_CID_HOST, VMADDR_CID_LOCAL, VMADDR_PORT_ANY } from "../mod.ts";

const port = Number(process.argv[2] ?? VMADDR_PORT_ANY);

function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      argv[0],
      argv.slice(1),
      { timeout: 10_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 127) : 0, stdout, stderr }),
    )
  );
}

const server = serve({
  port,
  allowCids: [VMADDR_CID_HOST, VMADDR_CID_LOCAL],
  onListen: (addr) => console.log(`agent listening on ${addr}`),
}, async (req, info) => {
  const { pathname } = new URL(req.url);
  const route = `${req.method} ${pathname}`;
  if (route === "GET /health") return Response.json({ ok: true });
  if (route === "GET /v1/info") {
    let cid: number | null = null;
    try {
      cid = localCid();
    } catch { /* no vsock device: say so with null */ }
    return Response.json({ cid, hostname: hostname(), uptime: uptime(), caller: info.remoteAddr.cid });
  }
  if (route === "POST /v1/exec") {
    const body = await req.json().catch(() => null) as { argv?: unknown } | null;
    const argv = body?.argv;
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === "string")) {
      return Response.json({ error: 'expected {"argv": ["cmd", "arg", ...]}' }, { status: 400 });
    }
    return Response.json(await run(argv));
  }
  return Response.json({ error: `no route ${route}` }, { status: 404 });
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.log(`agent: ${signal}, shutting down`);
    server.shutdown();
  });
}
await server.finished;
console.log("agent: stopped");
