/**
 * The HTTP layer (serve, the client, the Duplex bridge, the node:http quirk
 * fixes) over TCP-backed connections of VsockConn's shape, so it runs on the
 * host. The same behaviour over real AF_VSOCK, with independent peers, is in
 * test/e2e/http.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect as tcp, createServer, type Socket } from "node:net";
import { createHttpClient, fetch, serve, type ServeHandler, type ServeOptions, VsockHttpClient } from "../../http.ts";
import { VsockError } from "../../mod.ts";
import { pattern, sha256, streamOf } from "../e2e/data.ts";
import { sleep, withTimeout } from "../helpers.ts";
import { tcpDial, tcpListener } from "./tcp_conn.ts";

const quiet = { onListen: (): void => {} };

/** A server on a TCP-backed listener, a client dialing it, and a raw-socket helper. */
async function setup(handler: ServeHandler, options: ServeOptions = {}) {
  const listener = await tcpListener(3);
  let dials = 0;
  const server = serve({ ...quiet, ...options, listener }, handler);
  const client = new VsockHttpClient(() => (dials++, tcpDial(listener.port)), "http://localhost", {});
  return {
    server,
    client,
    port: listener.port,
    dials: (): number => dials,
    async [Symbol.asyncDispose](): Promise<void> {
      client.close();
      await withTimeout(server.shutdown(), 5000, "shutdown hung");
    },
  };
}

/** Sends raw bytes on a fresh TCP connection and collects what comes back until `until` matches or the peer closes. */
async function raw(port: number, steps: (string | number)[], until?: RegExp): Promise<string> {
  const socket: Socket = tcp(port, "127.0.0.1");
  let got = "";
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("data", (d) => (got += d.toString("latin1")));
  socket.on("error", () => {});
  for (const step of steps) {
    if (typeof step === "number") await sleep(step);
    else socket.write(step);
  }
  const end = Date.now() + 5000;
  while (Date.now() < end && !(until && until.test(got))) {
    if (socket.destroyed) break;
    await Promise.race([closed, sleep(20)]);
  }
  socket.destroy();
  return got;
}

const hello: ServeHandler = (req, info) =>
  Response.json({ method: req.method, url: req.url, cid: info.remoteAddr.cid });

test("keep-alive: two requests on one connection, each with a reason phrase", async () => {
  await using s = await setup(hello);
  const got = await raw(s.port, [
    "GET /a HTTP/1.1\r\nHost: agent\r\n\r\n",
    200,
    "GET /b?x=1 HTTP/1.1\r\nHost: agent\r\n\r\n",
  ], /"url":"http:\/\/agent\/b\?x=1"[^]*\}$/);
  assert.equal(got.match(/HTTP\/1\.1 200 OK\r\n/g)?.length, 2, got);
  assert.match(got, /"url":"http:\/\/agent\/a"/);
  assert.match(got, /"cid":3/);
});

test("pipelining: two requests in one write get two responses in order", async () => {
  await using s = await setup((req) => new Response(new URL(req.url).pathname));
  const got = await raw(s.port, [
    "GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n",
  ], /second/);
  assert.ok(got.indexOf("/first") > 0 && got.indexOf("/first") < got.indexOf("/second"), got);
});

test("without a Host header the URL names the server's CID and port", async () => {
  await using s = await setup(hello);
  const got = await raw(s.port, ["GET /x HTTP/1.0\r\n\r\n"], /\}$/);
  assert.match(got, new RegExp(`"url":"http://1:${s.port}/x"`));
});

test("absolute-form request lines (proxy clients such as Deno's) are accepted", async () => {
  await using s = await setup(hello);
  const got = await raw(s.port, ["GET http://agent:8080/p HTTP/1.1\r\nHost: agent:8080\r\n\r\n"], /\}$/);
  assert.match(got, /"url":"http:\/\/agent:8080\/p"/);
});

test("garbage gets 400, an oversized head 431, and the server keeps serving", async () => {
  await using s = await setup(hello, { maxHeaderSize: 4096 });
  assert.match(await raw(s.port, ["\x00\x01 nonsense\r\n\r\n"], /\r\n\r\n/), /^HTTP\/1\.1 400 Bad Request\r\n/);
  const big = `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"a".repeat(8000)}\r\n\r\n`;
  assert.match(await raw(s.port, [big], /\r\n\r\n/), /^HTTP\/1\.1 431 /);
  const res = await s.client.fetch("/still");
  assert.equal(res.status, 200);
  assert.equal((await res.json()).url, "http://localhost/still");
});

test("a handler that throws gets 500 (or onError's answer) and the server keeps serving", async () => {
  const errors: unknown[] = [];
  let calls = 0;
  await using s = await setup(() => {
    if (calls++ === 0) throw new Error("boom");
    return undefined as unknown as Response; // not a Response: also an error
  }, { onError: (e) => (errors.push(e), new Response("sorry", { status: 503 })) });
  const first = await s.client.fetch("/");
  assert.equal(first.status, 503);
  assert.equal(await first.text(), "sorry");
  const second = await s.client.fetch("/");
  assert.equal(second.status, 503);
  assert.equal((errors[0] as Error).message, "boom");
  assert.ok(errors[1] instanceof TypeError && /not a Response/.test(errors[1].message));
});

test("default onError answers 500 and logs", async () => {
  const logged: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => logged.push(args);
  try {
    await using s = await setup(() => {
      throw new Error("kaput");
    });
    const res = await s.client.fetch("/");
    assert.equal(res.status, 500);
    assert.equal(await res.text(), "Internal Server Error");
  } finally {
    console.error = original;
  }
  assert.ok(logged.some((a) => String(a).includes("kaput")));
});

test("a body whole in memory leaves with its head in one write, with a Content-Length", async () => {
  // A send per piece costs a syscall (and, on Deno, an FFI hand-off) each: as
  // srvx streams it, Bun sent the head alone and then the chunked body, Deno
  // a 64 KiB body's terminator alone.
  const listener = await tcpListener(3);
  const writes: number[] = [];
  const accept = listener.accept.bind(listener);
  listener.accept = async () => {
    const conn = await accept();
    const write = conn.write.bind(conn);
    conn.write = (p: Uint8Array) => (writes.push(p.byteLength), write(p));
    return conn;
  };
  const server = serve({ ...quiet, listener }, async (req) => new Response(await req.arrayBuffer()));
  try {
    for (const size of [64, 64 * 1024]) {
      writes.length = 0;
      const post = (tag: string) =>
        `POST /${tag} HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n${tag.repeat(size / tag.length)}`;
      const got = await raw(listener.port, [post("ab"), 300, post("cd")], /cdcd(\r\n0\r\n\r\n)?$/);
      assert.equal(got.match(/HTTP\/1\.1 200 OK\r\n/g)?.length, 2, got.slice(0, 300));
      assert.equal(got.match(new RegExp(`\r\ncontent-length: ${size}\r\n`, "gi"))?.length, 2, got.slice(0, 300));
      assert.equal(writes.length, 2, `${size}-byte bodies: writes of ${writes.join(", ")} bytes for two responses`);
    }
  } finally {
    await withTimeout(server.shutdown(), 5000, "shutdown hung");
  }
});

test("1 MiB POST is echoed back intact; the pool reuses one connection", async () => {
  await using s = await setup((req) => new Response(req.body));
  const data = pattern(1024 * 1024 + 7);
  for (let i = 0; i < 3; i++) {
    const res = await s.client.fetch("/echo", { method: "POST", body: data as Uint8Array<ArrayBuffer> });
    assert.equal(sha256(new Uint8Array(await res.arrayBuffer())), sha256(data));
  }
  assert.equal(s.dials(), 1);
});

test("a streaming request body arrives chunk by chunk (chunked encoding)", async () => {
  const seen: number[] = [];
  await using s = await setup(async (req) => {
    assert.equal(req.headers.get("transfer-encoding"), "chunked");
    for await (const chunk of req.body!) seen.push(chunk.byteLength);
    return new Response(String(seen.reduce((a, b) => a + b, 0)));
  });
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i++ === 3) c.close();
      else c.enqueue(new Uint8Array(1000));
    },
  });
  const res = await s.client.fetch("/", { method: "PUT", body });
  assert.equal(await res.text(), "3000");
});

test("streamed request bodies on a reused keep-alive connection (Node's client lost the response after pipe())", async () => {
  await using s = await setup(async (req) => new Response(String((await req.arrayBuffer()).byteLength)));
  for (const size of [1000, 100_000, 300_000]) {
    const res = await s.client.fetch("/", { method: "POST", body: streamOf(pattern(size)), timeout: 10_000 });
    assert.equal(await res.text(), String(size));
  }
  assert.equal(s.dials(), 1);
});

test("a slow ReadableStream response reaches the client chunk by chunk", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  await using s = await setup(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        async start(c) {
          c.enqueue(new TextEncoder().encode("first;"));
          await gate; // the second chunk waits until the client saw the first
          c.enqueue(new TextEncoder().encode("second"));
          c.close();
        },
      }),
    )
  );
  const res = await s.client.fetch("/");
  const reader = res.body!.getReader();
  const first = await withTimeout(reader.read(), 5000, "the first chunk did not arrive on its own");
  assert.equal(new TextDecoder().decode(first.value), "first;");
  release();
  let rest = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
  assert.equal(rest, "second");
});

test("HEAD, 204 and 304 responses have no body; Content-Length responses work", async () => {
  await using s = await setup((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/204") return new Response(null, { status: 204 });
    if (path === "/304") return new Response(null, { status: 304 });
    return new Response("twelve bytes", { headers: { "content-length": "12" } });
  });
  const head = await s.client.fetch("/", { method: "HEAD" });
  assert.equal(head.headers.get("content-length"), "12");
  assert.equal(head.body, null);
  assert.equal((await s.client.fetch("/204")).body, null);
  assert.equal((await s.client.fetch("/304")).status, 304);
  assert.equal(await (await s.client.fetch("/")).text(), "twelve bytes");
  assert.equal(s.dials(), 1, "bodiless responses must not cost the connection");
});

test("req.signal aborts when the client goes away mid-request", async () => {
  let aborted!: () => void;
  const sawAbort = new Promise<void>((r) => (aborted = r));
  await using s = await setup((req) => {
    req.signal.addEventListener("abort", () => aborted());
    return new Promise<Response>(() => {}); // never answers
  });
  const controller = new AbortController();
  const pending = s.client.fetch("/", { signal: controller.signal });
  await sleep(200);
  controller.abort(new Error("caller gave up"));
  await assert.rejects(pending, /caller gave up/);
  await withTimeout(sawAbort, 5000, "req.signal never aborted");
});

test("aborting mid-body rejects the body read with the reason", async () => {
  await using s = await setup(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array(10));
        }, // then nothing: the body never ends
      }),
    )
  );
  const controller = new AbortController();
  const res = await s.client.fetch("/", { signal: controller.signal });
  const reader = res.body!.getReader();
  await reader.read();
  const reason = new Error("enough");
  controller.abort(reason);
  await assert.rejects(withTimeout(reader.read(), 5000, "body read hung"), (e) => e === reason);
});

test("timeout: no response head in time rejects with ETIMEDOUT", async () => {
  await using s = await setup(() => new Promise<Response>(() => {}));
  const t0 = Date.now();
  await assert.rejects(s.client.fetch("/", { timeout: 300 }), (e) => e instanceof VsockError && e.code === "ETIMEDOUT");
  assert.ok(Date.now() - t0 < 3000);
});

test("allowCids: other peers are closed before a byte is parsed", async () => {
  let calls = 0;
  await using s = await setup(() => (calls++, new Response("no")), { allowCids: [5] });
  await assert.rejects(s.client.fetch("/"));
  assert.equal(calls, 0);
});

test("maxSockets bounds the connections a client opens", async () => {
  const listener = await tcpListener(3);
  await using _server = serve({ ...quiet, listener }, async () => (await sleep(20), new Response("ok")));
  let dials = 0;
  using client = new VsockHttpClient(() => (dials++, tcpDial(listener.port)), "http://localhost", { maxSockets: 2 });
  const all = await Promise.all(Array.from({ length: 12 }, () => client.fetch("/").then((r) => r.text())));
  assert.deepEqual(new Set(all), new Set(["ok"]));
  assert.ok(dials <= 2, `${dials} connections`);
});

test("keep-alive race: an idempotent request on a connection the server just closed is sent once more", async () => {
  // A server that answers the first request on each connection (keep-alive) and closes the connection,
  // unanswered, when a second request arrives on it: what a client meets when the server's idle timer
  // fires just as a pooled connection is reused.
  const seen: string[] = [];
  let dead = false; // then every request is answered by a close
  const server = createServer((socket) => {
    let requests = 0;
    socket.on("data", (d) => {
      seen.push(d.toString("latin1").split(" ", 2).join(" "));
      if (++requests === 1 && !dead) {
        socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nok");
      } else socket.destroy();
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  let dials = 0;
  using client = new VsockHttpClient(() => (dials++, tcpDial(port)), "http://localhost", {});
  try {
    assert.equal(await (await client.fetch("/first")).text(), "ok");
    // GET on the pooled connection: closed unanswered, then sent again on a new connection.
    assert.equal(await (await client.fetch("/again")).text(), "ok");
    assert.equal(dials, 2);
    // PUT with a body in memory is idempotent too.
    assert.equal(await (await client.fetch("/put", { method: "PUT", body: "x" })).text(), "ok");
    assert.equal(dials, 3);
    // Sent once more, never twice: when the new connection fails too, the call fails.
    dead = true;
    await assert.rejects(client.fetch("/doomed"), /socket hang up|ECONNRESET|EPIPE/);
    assert.equal(dials, 4);
    assert.deepEqual(seen.filter((line) => line === "GET /doomed"), ["GET /doomed", "GET /doomed"]);
    dead = false;
    assert.equal(await (await client.fetch("/warm")).text(), "ok"); // a new connection, now pooled
    assert.equal(dials, 5);
    // POST is not sent again, on any runtime (Deno's node:http client would resend it: noRuntimeResend):
    // the failure reaches the caller, and the server saw it once.
    const before = seen.length;
    await assert.rejects(client.fetch("/post", { method: "POST", body: "x" }), /socket hang up|ECONNRESET|EPIPE/);
    assert.deepEqual(seen.slice(before), ["POST /post"]);
  } finally {
    client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  assert.deepEqual(seen.filter((line) => line === "GET /again"), ["GET /again", "GET /again"]);
});

test("shutdown lets the request in flight finish, closes idle connections, then finished resolves", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const listener = await tcpListener(3);
  const server = serve({ ...quiet, listener }, async (req) => {
    if (new URL(req.url).pathname === "/slow") await gate;
    return new Response("done");
  });
  using idle = new VsockHttpClient(() => tcpDial(listener.port), "http://localhost", {});
  using busy = new VsockHttpClient(() => tcpDial(listener.port), "http://localhost", {});
  assert.equal(await (await idle.fetch("/fast")).text(), "done"); // leaves an idle keep-alive connection
  const slow = busy.fetch("/slow");
  await sleep(200);
  const stopped = server.shutdown();
  let finished = false;
  server.finished.then(() => (finished = true));
  await sleep(200);
  assert.equal(finished, false, "finished before the request in flight was answered");
  release();
  const res = await slow;
  assert.equal(res.headers.get("connection"), "close");
  assert.equal(await res.text(), "done");
  await withTimeout(stopped, 5000, "shutdown never finished");
  assert.equal(listener.closed, true);
});

test("shutdown finishes even when a client never closes its side after the last response", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const listener = await tcpListener(3);
  const server = serve({ ...quiet, listener }, async () => (await gate, new Response("bye")));
  // A raw client that sends one request and then just sits there, reading, never closing.
  const socket = tcp({ port: listener.port, host: "127.0.0.1", allowHalfOpen: true });
  let got = "";
  socket.on("data", (d) => (got += d.toString()));
  socket.on("error", () => {});
  socket.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  await sleep(200);
  const stopped = server.shutdown();
  release();
  await withTimeout(stopped, 5000, "a client that never closes held the shutdown");
  await withTimeout(new Promise((r) => socket.once("end", r)), 5000, "the server never ended the connection");
  assert.match(got, /^HTTP\/1\.1 200 OK\r\n[^]*connection: close[^]*bye/i);
  socket.destroy();
});

test("the keep-alive timeout closes idle connections but never cuts a request being answered", async () => {
  await using s = await setup(async (req) => {
    if (new URL(req.url).pathname === "/slow") await sleep(800); // slower than the keep-alive timeout
    return new Response("answered");
  }, { keepAliveTimeout: 300 });
  const got = await raw(s.port, [
    "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n",
    1500,
    "GET /fast HTTP/1.1\r\nHost: a\r\n\r\n", // too late: idle for 700 ms after the answer
  ]);
  assert.equal(got.match(/answered/g)?.length, 1, JSON.stringify(got));
});

test("the keep-alive timeout never cuts a request that arrived but is not read yet (a late read wake-up)", async () => {
  // Each read wakes 600 ms after its bytes arrive, twice the keep-alive timeout.
  // /a is answered at ~600 ms, which arms the 300 ms timer; /b is sent at 650 ms
  // and waits unread until ~1250 ms, so the timer fires (~900 ms) while it waits.
  // Closing then would cut a request the client already sent.
  const listener = await tcpListener(3, 600);
  const server = serve({ ...quiet, keepAliveTimeout: 300, listener }, () => new Response("answered"));
  try {
    const got = await raw(listener.port, [
      "GET /a HTTP/1.1\r\nHost: a\r\n\r\n",
      650,
      "GET /b HTTP/1.1\r\nHost: a\r\n\r\n",
    ], /(answered[^]*){2}/);
    assert.equal(got.match(/answered/g)?.length, 2, JSON.stringify(got));
  } finally {
    await withTimeout(server.shutdown(), 5000, "shutdown hung");
  }
});

test("an aborted signal shuts the server down", async () => {
  const listener = await tcpListener(3);
  const controller = new AbortController();
  const server = serve({ ...quiet, listener, signal: controller.signal }, hello);
  controller.abort();
  await withTimeout(server.finished, 5000, "signal did not shut the server down");
});

test("bad arguments get clear TypeErrors and RangeErrors", async () => {
  assert.throws(() => serve({ ...quiet } as never), /needs a handler/);
  assert.throws(() => serve(42 as never), TypeError);
  assert.throws(() => serve({ ...quiet, allowCids: [-1] }, hello), /allowCids/);
  assert.throws(() => serve({ ...quiet, keepAliveTimeout: -5 }, hello), RangeError);
  assert.throws(() => serve({ ...quiet, onError: 5 as never }, hello), /onError must be a function/);
  assert.throws(() => createHttpClient({ cid: 1, port: 80 }, { maxSockets: 0 }), RangeError);
  assert.throws(() => createHttpClient(7 as never), TypeError);
  assert.throws(() => createHttpClient("vsock://nope:x"), TypeError);
  await assert.rejects(fetch("http://example.com/"), /vsock:\/\/CID:PORT/);
  await assert.rejects(fetch("vsock://1/no-port"), /no port/);
  await assert.rejects(fetch("vsock://banana:80/"), TypeError);
  await assert.rejects(fetch("vsock://1:99999999999/"), RangeError); // above 32 bits
  // 32-bit ports (the kernel hands them out) pass parsing and fail only at connect: no vsock here.
  await assert.rejects(fetch("vsock://1:1760176449/x?y"), (e) => e instanceof VsockError);
  const client = createHttpClient({ cid: 1, port: 80 });
  await assert.rejects(client.fetch("/", { timeout: -1 }), RangeError);
  await assert.rejects(client.fetch("https://x/"), /plain http/);
  client.close();
  await assert.rejects(client.fetch("/"), (e) => e instanceof VsockError && e.code === "EBADF");
});

test("hybrid vsock: createHttpClient({ uds, port }) through a VMM socket to serve() on a hybrid listener", async () => {
  const { listen } = await import("../../mod.ts");
  const { createServer, connect: unixConnect } = await import("node:net");
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const dir = mkdtempSync(`${tmpdir()}/vsock-http-`);
  try {
    // The host side of guest-initiated traffic: the VMM dials `<uds>_<port>`.
    const listener = listen({ uds: `${dir}/host.sock`, port: 8080 });
    await using _server = serve(
      { ...quiet, listener },
      (req, info) => Response.json({ path: new URL(req.url).pathname, from: info.remoteAddr.toString() }),
    );
    assert.throws(() => serve({ ...quiet, listener, allowCids: [1] }, hello as never), /AF_VSOCK listeners/);
    // A minimal VMM for host-initiated traffic: `CONNECT <port>\n` → `OK …\n`, then bridge to
    // the hybrid listener's socket (standing in for the guest that listens on that port).
    const requests: string[] = [];
    const vmm = createServer((socket) => {
      socket.once("data", (first: Uint8Array) => {
        const line = new TextDecoder("latin1").decode(first);
        requests.push(line.slice(0, line.indexOf("\n")));
        const guest = unixConnect(`${dir}/host.sock_8080`, () => {
          socket.write("OK 1073741824\n");
          const rest = first.subarray(line.indexOf("\n") + 1);
          if (rest.byteLength) guest.write(rest);
          socket.pipe(guest).pipe(socket);
        });
        guest.on("error", () => socket.destroy());
      });
    });
    await new Promise<void>((r) => vmm.listen(`${dir}/vm.sock`, r));
    try {
      using client = createHttpClient({ uds: `${dir}/vm.sock`, port: 8080 });
      for (const path of ["/one", "/two"]) {
        const res = await client.fetch(path);
        assert.equal(res.status, 200);
        assert.equal((await res.json()).path, path);
      }
      const data = pattern(300_000);
      const echoed = await client.fetch("/echo", { method: "POST", body: data as Uint8Array<ArrayBuffer> });
      assert.equal(echoed.status, 200);
      assert.deepEqual(requests, ["CONNECT 8080"], "one handshake: the connection was reused");
      using byString = createHttpClient(`unix://${dir}/vm.sock?port=8080`);
      assert.equal((await (await byString.fetch("/three")).json()).path, "/three");
    } finally {
      vmm.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
