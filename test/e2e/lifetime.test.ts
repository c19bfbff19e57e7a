/**
 * Process and callback lifetime on every runtime: idle sockets let the
 * process exit while pending operations hold it, and closing sockets with
 * I/O pending leaves nothing behind that could fire later.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, listen, type VsockConn } from "../../mod.ts";
import { serve } from "../../http.ts";
import { eventually, openFds, RUNTIME, sleep, withTimeout } from "../helpers.ts";
import { Peer, runOn } from "./procs.ts";

test(`a ${RUNTIME} process whose only sockets are an idle listener and connection exits by itself`, async () => {
  const child = new Peer(...runOn(RUNTIME, "test/peers/lifetime_child.ts", "idle"));
  try {
    const out = await child.done(30_000);
    assert.equal(out.trim(), "round trip 1 byte, now idle");
  } finally {
    child.kill();
  }
});

test(`on ${RUNTIME} an unref'd connection's pending read lets the process exit, and one ref'd again holds it`, async () => {
  const child = new Peer(...runOn(RUNTIME, "test/peers/lifetime_child.ts", "unref"));
  try {
    const out = await child.done(30_000);
    assert.match(out, /^the ref'd read got 1\nnow only an unref'd read is pending \(peer \d+\)\n$/);
  } finally {
    child.kill();
  }
});

test(`a ${RUNTIME} process whose HTTP client left a keep-alive connection in its pool exits by itself`, async () => {
  // Server and pool keep the connection far longer than the child may take: only an unref'd socket lets it go.
  await using server = serve({ onListen: () => {}, keepAliveTimeout: 120_000 }, () => new Response("hi"));
  const child = new Peer(...runOn(RUNTIME, "test/peers/lifetime_child.ts", "http-idle", String(server.addr.port)));
  try {
    const out = await child.done(30_000);
    assert.equal(out.trim(), "200 hi, now idle");
  } finally {
    child.kill();
  }
});

test(`a pending accept and a pending read keep a ${RUNTIME} process alive until they complete`, async () => {
  const child = new Peer(...runOn(RUNTIME, "test/peers/lifetime_child.ts", "pending"));
  try {
    const [, port] = await child.match(/waiting (\d+)/);
    await sleep(1000); // nothing else keeps the child alive meanwhile
    using conn = await connect({ cid: 1, port: Number(port) });
    await child.match(/accepted/);
    await sleep(1000);
    assert.equal(child.proc.exitCode, null, "the child exited with its read pending");
    await conn.writeAll(new Uint8Array([1, 2, 3]));
    assert.deepEqual((await child.done(30_000)).trim().split("\n"), [`waiting ${port}`, "accepted", "read 3"]);
  } finally {
    child.kill();
  }
});

test("closing 300 connections with reads pending and data arriving: reads settle, nothing fires later", async () => {
  using listener = listen();
  const before = openFds();
  const N = 300;
  const clients: VsockConn[] = [];
  const accepted = new Map<number, VsockConn>();
  for (let i = 0; i < N; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: 50 }, () => Promise.all([connect({ cid: 1, port: listener.addr.port }), listener.accept()])),
    );
    for (const [client, server] of batch) {
      clients.push(client);
      accepted.set(server.remoteAddr.port, server);
    }
  }
  // accept() hands out connections in arrival order: pair each client with its own server end.
  const pairs = clients.map((client): [VsockConn, VsockConn] => [client, accepted.get(client.localAddr.port)!]);
  const pending = pairs.map(([client]) => client.read(new Uint8Array(16)));
  await sleep(50); // every read parked
  // Data lands on half of them as they close: readiness races the close.
  for (const [i, [client, server]] of pairs.entries()) {
    if (i % 2 === 0) await server.write(new Uint8Array([i & 0xff]));
    client.close();
  }
  const results = await withTimeout(Promise.all(pending), 10_000, "a pending read outlived close()");
  for (const r of results) assert.ok(r === null || r === 1, `read settled with ${r}`);
  for (const [, server] of pairs) server.close();
  await sleep(200); // time for any stray readiness callback to fire and crash us
  await eventually(() => openFds() === before, 5000, `fd count back to ${before} (now ${openFds()})`);
  // The reactor still works afterwards.
  const [client, server] = await Promise.all([connect({ cid: 1, port: listener.addr.port }), listener.accept()]);
  await server.writeAll(new Uint8Array([42]));
  const one = new Uint8Array(1);
  assert.equal(await client.read(one), 1);
  assert.equal(one[0], 42);
  client.close();
  server.close();
});
