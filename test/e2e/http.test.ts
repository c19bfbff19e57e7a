/**
 * HTTP over real AF_VSOCK CID 1, against peers nobody here wrote: python3's
 * http.client and http.server on AF_VSOCK, Deno's own vsock HTTP client
 * (createHttpClient's vsock proxy) and server (Deno.serve transport vsock),
 * curl through a socat TCP→vsock bridge; and the example agent on the other
 * runtime. Then streaming, abort, allowCids, errors, shutdown, load and fds.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createHttpClient, fetch, serve, type ServeHandler, type VsockHttpServer } from "../../http.ts";
import { connect } from "../../mod.ts";
import { openFds, RUNTIME, sleep, withTimeout } from "../helpers.ts";
import { collect, pattern, sha256, streamOf } from "./data.ts";
import { DENO, OTHERS, Peer, runOn } from "./procs.ts";

const MiB = 1024 * 1024;
const quiet = { onListen: (): void => {} };

/**
 * Our test server: GET → JSON about the request; POST → the body back after
 * reading all of it (clients such as python's http.client send the whole
 * body before they read: a streaming echo would fill both directions' 256 KiB
 * windows and deadlock); PUT → the body streamed back as it arrives.
 */
const echoHandler: ServeHandler = async (req, info) => {
  if (req.method === "POST") return new Response(await req.arrayBuffer());
  if (req.method === "PUT") return new Response(req.body);
  const url = new URL(req.url);
  return Response.json({ path: url.pathname + url.search, host: req.headers.get("host"), cid: info.remoteAddr.cid });
};

function ourServer(handler: ServeHandler = echoHandler, options = {}): VsockHttpServer {
  return serve({ ...quiet, ...options }, handler);
}

test("python3 http.client on AF_VSOCK -> our server: three keep-alive GETs, 1 MiB POST echoed intact", async () => {
  await using server = ourServer();
  const py = new Peer("python3", ["test/peers/py_http.py", "client", String(server.addr.port)]);
  const out = JSON.parse(await py.done());
  assert.equal(out.sockets, 1, "all requests should share one connection");
  assert.deepEqual(out.gets.map((g: [number, string]) => g.slice(0, 2)), [[200, "OK"], [200, "OK"], [200, "OK"]]);
  assert.deepEqual(out.gets.map((g: [number, string, { path: string; cid: number }]) => g[2].path), [
    "/a",
    "/b?x=1",
    "/c",
  ]);
  assert.equal(out.gets[0][2].cid, 1);
  const [status, length, got, sent] = out.echo;
  assert.equal(status, 200);
  assert.equal(length, MiB);
  assert.equal(got, sent);
});

test("Deno's createHttpClient vsock proxy client -> our server (absolute-form request lines)", async () => {
  await using server = ourServer();
  const deno = new Peer(DENO, [
    "run",
    "--allow-net",
    "--allow-read",
    "test/peers/deno_http.ts",
    "client",
    String(server.addr.port),
  ]);
  const out = JSON.parse(await deno.done());
  assert.deepEqual(out.gets.map((g: [number, { path: string }]) => [g[0], g[1].path]), [
    [200, "/a"],
    [200, "/b?x=1"],
    [200, "/c"],
  ]);
  const [status, length, got, sent] = out.echo;
  assert.deepEqual([status, length, got], [200, MiB, sent]);
});

test("curl -> socat TCP-LISTEN/VSOCK-CONNECT bridge -> our server", async () => {
  await using server = ourServer();
  const tcpPort = 20000 + Math.floor(Math.random() * 30000);
  const socat = new Peer("socat", [
    `TCP-LISTEN:${tcpPort},bind=127.0.0.1,reuseaddr,fork`,
    `VSOCK-CONNECT:1:${server.addr.port}`,
  ]);
  try {
    // Text, so that curl's stdout survives the trip through a string.
    const text = Array.from(pattern(128 * 1024), (b) => b.toString(16).padStart(2, "0")).join("");
    const body = new TextEncoder().encode(text);
    let out = "";
    for (let i = 0; i < 50 && !out; i++) {
      const curl = new Peer("curl", [
        "-sS",
        "--fail",
        `http://127.0.0.1:${tcpPort}/hi?x=1`,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} ",
        "--next",
        "-sS",
        "--fail",
        "--data-binary",
        "@-",
        `http://127.0.0.1:${tcpPort}/echo`,
      ], body);
      const code = await curl.exited;
      if (code === 0) out = curl.stdout;
      else await sleep(100); // socat not listening yet
    }
    assert.ok(out.startsWith("200 "), `curl said: ${out.slice(0, 100)}`);
    assert.equal(out.length, 4 + text.length);
    assert.equal(out.slice(4), text);
  } finally {
    socat.kill();
  }
});

test("our client -> python3 http.server on AF_VSOCK: keep-alive GETs, Content-Length POST, chunked response", async () => {
  const py = new Peer("python3", ["test/peers/py_http.py", "server"]);
  try {
    const [, port] = await py.match(/ready (\d+)/);
    using client = createHttpClient({ cid: 1, port: Number(port) });
    for (const path of ["/one", "/two?y=2"]) {
      const res = await client.fetch(path);
      assert.equal(res.status, 200);
      const json = await res.json();
      assert.equal(json.path, path);
      assert.equal(json.host, "localhost");
    }
    const data = pattern(MiB + 3);
    const echoed = await client.fetch("/echo", { method: "POST", body: data as Uint8Array<ArrayBuffer> });
    assert.equal(sha256(new Uint8Array(await echoed.arrayBuffer())), sha256(data));
    assert.equal(await (await client.fetch("/stream")).text(), "part0;part1;part2;");
    // The module-level fetch with a vsock:// URL reaches the same server.
    const viaUrl = await fetch(`vsock://1:${port}/via-url`);
    assert.equal((await viaUrl.json()).path, "/via-url");
  } finally {
    py.kill();
  }
});

test("our client -> Deno.serve({ transport: 'vsock' })", async () => {
  const deno = new Peer(DENO, [
    "run",
    "--unstable-vsock",
    "--allow-net",
    "--allow-read",
    "test/peers/deno_http.ts",
    "server",
  ]);
  try {
    const [, port] = await deno.match(/ready (\d+)/);
    using client = createHttpClient(`vsock://1:${port}`);
    assert.equal((await (await client.fetch("/hello?z")).json()).path, "/hello?z");
    const data = pattern(2 * MiB);
    const res = await client.fetch("/echo", { method: "POST", body: streamOf(data) });
    assert.equal(sha256(await collect(res.body!)), sha256(data));
    assert.equal(await (await client.fetch("/stream")).text(), "part0;part1;part2;");
  } finally {
    deno.kill();
  }
});

for (const other of OTHERS) {
  test(`our client -> examples/http_agent.ts running on ${other}`, async () => {
    const [cmd, args] = runOn(other, "examples/http_agent.ts");
    // Deno: the agent reads the hostname and uptime, and /v1/exec starts a process.
    const agent = new Peer(cmd, other === "deno" ? ["run", "--allow-sys", "--allow-run", ...args.slice(1)] : args);
    try {
      const [, port] = await agent.match(/agent listening on vsock:\/\/\*:(\d+)/);
      using client = createHttpClient({ cid: 1, port: Number(port) });
      const health = await client.fetch("/health");
      assert.equal(health.status, 200, `agent stderr: ${agent.stderr}`);
      assert.deepEqual(await health.json(), { ok: true });
      assert.equal((await (await client.fetch("/v1/info")).json()).caller, 1);
      const exec = await client.fetch("/v1/exec", { method: "POST", body: JSON.stringify({ argv: ["echo", "hi"] }) });
      assert.equal(exec.status, 200, `agent stderr: ${agent.stderr}`);
      assert.deepEqual(await exec.json(), { code: 0, stdout: "hi\n", stderr: "" });
      assert.equal((await client.fetch("/nope")).status, 404);
      // process.kill, not proc.kill: Deno's node:child_process reports a child
      // it signalled itself as killed by the signal, even when the child handled it.
      process.kill(agent.proc.pid!, "SIGTERM");
      const code = await agent.exited;
      assert.equal(
        code,
        0,
        `agent exit ${code} ${agent.proc.signalCode}\nstdout: ${agent.stdout}\nstderr: ${agent.stderr}`,
      );
      assert.match(agent.stdout, /agent: stopped/);
    } finally {
      agent.kill();
    }
  });
}

test("examples/firecracker_host.ts -> a Firecracker-like VMM muxer (vmm_mux.py) -> examples/http_agent.ts on vsock", async () => {
  const dir = mkdtempSync(`${tmpdir()}/vsock-fc-`);
  const [cmd, args] = runOn(OTHERS[0], "examples/http_agent.ts");
  const agent = new Peer(cmd, OTHERS[0] === "deno" ? ["run", "--allow-sys", "--allow-run", ...args.slice(1)] : args);
  const mux = new Peer("python3", ["test/peers/vmm_mux.py", `${dir}/v.sock`]);
  try {
    const [, port] = await agent.match(/agent listening on vsock:\/\/\*:(\d+)/);
    await mux.match(/ready/);
    const out = await new Peer(...runOn(RUNTIME, "examples/firecracker_host.ts", `${dir}/v.sock`, port)).done();
    assert.match(out, /health: \{\s*ok: true,?\s*\}/); // runtimes print objects on one line or several
    assert.match(out, /the agent saw the call come from CID 1/);
    assert.match(out, /exec uname -r: exit 0, \S+/);
  } finally {
    agent.kill();
    mux.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("streaming both ways: 4 MiB streamed up and echoed down, chunk by chunk", async () => {
  await using server = ourServer();
  using client = createHttpClient({ cid: 1, port: server.addr.port });
  const data = pattern(4 * MiB);
  const res = await client.fetch("/echo", { method: "PUT", body: streamOf(data, 64 * 1024) });
  let chunks = 0;
  const parts: Uint8Array[] = [];
  for await (const chunk of res.body!) {
    chunks++;
    parts.push(chunk);
  }
  const got = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) (got.set(p, at), at += p.byteLength);
  assert.equal(sha256(got), sha256(data));
  assert.ok(chunks > 4, `the response came in ${chunks} chunks`);
});

test("abort mid-body: the server's req.signal aborts, the client's read rejects with the reason", async () => {
  let serverSaw!: (reason: unknown) => void;
  const sawAbort = new Promise((r) => (serverSaw = r));
  await using server = ourServer((req) => {
    req.signal.addEventListener("abort", () => serverSaw(req.signal.reason));
    let n = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(c) {
          await sleep(5);
          c.enqueue(new Uint8Array(1024).fill(n++));
        },
      }),
    );
  });
  using client = createHttpClient({ cid: 1, port: server.addr.port });
  const controller = new AbortController();
  const res = await client.fetch("/forever", { signal: controller.signal });
  const reader = res.body!.getReader();
  await reader.read();
  const reason = new Error("stop now");
  controller.abort(reason);
  // The body errors with the reason. A chunk or two that had already reached the body's queue may
  // still be read first (Node's stream errors a tick after destroy(); seen on Deno, 1 run of 2).
  let after = 0;
  await assert.rejects(
    withTimeout(
      (async () => {
        for (;;) {
          const { done } = await reader.read();
          if (done) return;
          after++;
        }
      })(),
      10_000,
      "read hung after abort",
    ),
    (e) => e === reason,
  );
  assert.ok(after <= 16, `${after} chunks were read after the abort`);
  await withTimeout(sawAbort, 10_000, "the server never saw the client go away");
});

test("allowCids: CID 1 is served when allowed and refused before parsing when not", async () => {
  let calls = 0;
  await using refusing = ourServer(() => (calls++, new Response("x")), { allowCids: [3] });
  await using allowing = ourServer(() => (calls++, new Response("y")), { allowCids: [1] });
  using a = createHttpClient({ cid: 1, port: allowing.addr.port });
  assert.equal(await (await a.fetch("/")).text(), "y");
  using r = createHttpClient({ cid: 1, port: refusing.addr.port });
  await assert.rejects(r.fetch("/"));
  assert.equal(calls, 1);
});

test("garbage over raw vsock gets 400, a throwing handler 500, and the server keeps serving", async () => {
  const original = console.error;
  console.error = () => {};
  try {
    await using server = ourServer((req) => {
      if (new URL(req.url).pathname === "/throw") throw new Error("handler bug");
      return new Response("fine");
    });
    const conn = await connect({ cid: 1, port: server.addr.port });
    await conn.writeAll(new TextEncoder().encode("THIS IS NOT HTTP\r\n\r\n"));
    const reply = new TextDecoder().decode(await collect(conn.readable));
    conn.close();
    assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/);
    using client = createHttpClient({ cid: 1, port: server.addr.port });
    assert.equal((await client.fetch("/throw")).status, 500);
    assert.equal(await (await client.fetch("/ok")).text(), "fine");
  } finally {
    console.error = original;
  }
});

test("a request without a Host header: the URL and info name the vsock ends (raw HTTP/1.0 over vsock)", async () => {
  let seen: { url: string; local: string; remote: string } | undefined;
  await using server = ourServer((req, info) => {
    seen = { url: req.url, local: info.localAddr.toString(), remote: info.remoteAddr.toString() };
    return new Response("ok");
  });
  const conn = await connect({ cid: 1, port: server.addr.port });
  await conn.writeAll(new TextEncoder().encode("GET /where?x=1 HTTP/1.0\r\n\r\n"));
  const reply = new TextDecoder().decode(await collect(conn.readable)); // HTTP/1.0: the server closes after it
  conn.close();
  assert.match(reply, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok$/);
  assert.ok(seen);
  // No Host: the URL names the server's own end, CID:PORT (the CID the client dialled, the listener's port).
  assert.equal(seen.url, `http://1:${server.addr.port}/where?x=1`);
  assert.equal(seen.local, `vsock://1:${server.addr.port}`);
  assert.equal(seen.remote, `vsock://1:${conn.localAddr.port}`);
});

test("the keep-alive timeout closes an idle vsock connection, and not one that sends within it", async () => {
  await using server = ourServer(() => new Response("answered"), { keepAliveTimeout: 400 });
  const get = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  const conn = await connect({ cid: 1, port: server.addr.port });
  const replies: Promise<Uint8Array> = collect(conn.readable);
  const started = Date.now();
  // Three requests 250 ms apart (each within the timeout of the answer before), then silence.
  for (let i = 0; i < 3; i++) {
    await conn.writeAll(get);
    await sleep(250);
  }
  const text = new TextDecoder().decode(await withTimeout(replies, 10_000, "the idle connection was never closed"));
  const lasted = Date.now() - started;
  conn.close();
  assert.equal(text.match(/answered/g)?.length, 3, text);
  // Closed by the server, no sooner than 400 ms after the last request (sent at ~500 ms).
  assert.ok(lasted >= 850, `closed after ${lasted} ms`);
});

test("graceful shutdown: the request in flight finishes, then finished resolves and the port is free", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const server = ourServer(async () => (await gate, new Response("finished")));
  using client = createHttpClient({ cid: 1, port: server.addr.port });
  const inFlight = client.fetch("/slow");
  await sleep(300);
  const stopped = server.shutdown();
  await assert.rejects(createHttpClient({ cid: 1, port: server.addr.port }).fetch("/new"), /ECONNRESET/);
  release();
  const res = await inFlight;
  assert.equal(await res.text(), "finished");
  assert.equal(res.headers.get("connection"), "close");
  await withTimeout(stopped, 10_000, "shutdown never finished");
});

test("200 concurrent keep-alive clients, 5 requests each: nothing lost, nothing mixed up", async () => {
  // A keep-alive timeout far above the run: 200 clients in one process in the emulated guest can take
  // over 5 s to send a client's next POST, and a POST the server closed on is the caller's to retry
  // (the keep-alive race; unit-tested in test/unit/http.test.ts). This test is about concurrency.
  await using server = ourServer(echoHandler, { keepAliveTimeout: 120_000 });
  const clients = Array.from(
    { length: 200 },
    () => createHttpClient({ cid: 1, port: server.addr.port }, { maxSockets: 1 }),
  );
  try {
    const results = await Promise.all(clients.map(async (client, i) => {
      const seen: string[] = [];
      for (let r = 0; r < 5; r++) {
        const body = `client ${i} request ${r}`;
        const res = await client.fetch(`/c${i}`, { method: "POST", body });
        seen.push(await res.text());
      }
      return seen.every((s, r) => s === `client ${i} request ${r}`);
    }));
    assert.equal(results.filter(Boolean).length, 200);
  } finally {
    for (const c of clients) c.close();
  }
});

test("fd count is flat after 1,300 requests (keep-alive pool and a connection per request)", async () => {
  const before = openFds();
  {
    await using server = ourServer((req) => new Response(new URL(req.url).pathname));
    using pooled = createHttpClient({ cid: 1, port: server.addr.port }, { maxSockets: 8 });
    for (let batch = 0; batch < 12; batch++) {
      const texts = await Promise.all(
        Array.from({ length: 100 }, (_, i) => pooled.fetch(`/${batch}-${i}`).then((r) => r.text())),
      );
      assert.equal(texts[99], `/${batch}-99`);
    }
    using single = createHttpClient({ cid: 1, port: server.addr.port }, { keepAlive: false });
    for (let i = 0; i < 100; i++) assert.equal(await (await single.fetch(`/s${i}`)).text(), `/s${i}`);
  }
  await sleep(500);
  const after = openFds();
  assert.ok(after <= before + 2, `fds before ${before}, after ${after}`);
});

test("the README's examples/readme_http.ts runs as written on this runtime", async () => {
  const peer = new Peer(...runOn(RUNTIME, "examples/readme_http.ts"));
  const out = await peer.done();
  assert.match(out, /path: ["']\/health["'],\s+from: 1/); // Node prints single quotes
  assert.match(out, /^200$/m);
  assert.match(peer.stderr, /^Listening on vsock:\/\/\*:\d+\/$/m);
});
