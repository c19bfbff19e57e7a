/**
 * A child for the process-lifetime tests, run on each runtime:
 * - `idle`: a listener and a connection that have done one round trip and
 *   are left open, idle; the process must exit by itself.
 * - `unref`: a connection whose read waits forever, unref'd, and one unref'd
 *   and ref'd again whose read waits until its peer writes 1 s later (from a
 *   timer that does not hold the process either); the second read must
 *   complete, then the process must exit by itself.
 * - `http-idle PORT`: one request of an HTTP client (`http.ts`) whose pool
 *   keeps idle connections for 60 s, its keep-alive connection left in the
 *   pool and the client not closed; the process must exit by itself.
 * - `pending`: a pending accept, then a pending read; these must keep the
 *   process alive until the parent connects and writes.
 * - `worker`: runs `worker-body` in a worker thread, which waits on an accept
 *   until it closes its listener, then ends; the thread and the process must
 *   end cleanly (on Node, its loop is closed with the reactor's poll handle).
 * - `gc`: parks on the reactor 20 times with full garbage collections in
 *   between (an eventfd made readable each time, so no vsock is needed): an
 *   FFI callback or buffer the reactor forgot to keep alive would be freed
 *   under it. Needs a `gc` function: Node and Deno get it from
 *   `--expose-gc`, Bun has `Bun.gc`.
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { adapter } from "../../ffi/mod.ts";
import { reactor } from "../../src/reactor.ts";
import { connect, listen, type VsockConn } from "../../mod.ts";
import { setTimeout } from "node:timers";
import { garbageCollector } from "../helpers.ts";

const mode = process.argv[2];
if (mode === "worker") {
  const worker = new Worker(fileURLToPath(import.meta.url), { argv: ["worker-body"] });
  worker.on("message", (line: string) => console.log(line));
  worker.on("exit", (code) => console.log(`worker exited ${code}`));
} else if (mode === "worker-body") {
  const listener = listen();
  setTimeout(() => listener.close(), 50);
  const outcome = await listener.accept().then(() => "a connection", (e: { code?: string }) => e.code);
  const { parentPort } = await import("node:worker_threads");
  parentPort?.postMessage(`accept in the worker: ${outcome}`);
} else if (mode === "idle") {
  const listener = listen();
  const client = await connect({ cid: 1, port: listener.addr.port });
  const server = await listener.accept();
  await server.writeAll(new Uint8Array([7]));
  const one = new Uint8Array(1);
  console.log(`round trip ${await client.read(one)} byte, now idle`);
  // Left open on purpose: idle sockets must not hold the process.
} else if (mode === "unref") {
  const listener = listen();
  const pair = (): Promise<[VsockConn, VsockConn]> =>
    Promise.all([connect({ cid: 1, port: listener.addr.port }), listener.accept()]);
  const [forever, foreverPeer] = await pair();
  const [later, laterPeer] = await pair();
  forever.unref();
  forever.read(new Uint8Array(1)).then((n) => console.log(`the unref'd read got ${n}`));
  later.unref();
  later.ref();
  const timer = setTimeout(() => laterPeer.write(new Uint8Array([5])), 1000);
  timer.unref();
  // Not a top-level await: Bun and Deno keep a process up while one is pending.
  later.read(new Uint8Array(1)).then((n) => {
    console.log(`the ref'd read got ${n}`);
    console.log(`now only an unref'd read is pending (peer ${foreverPeer.remoteAddr.port})`);
  });
} else if (mode === "http-idle") {
  const { createHttpClient } = await import("../../http.ts");
  const client = createHttpClient({ cid: 1, port: Number(process.argv[3]) }, { idleTimeout: 60_000 });
  const res = await client.fetch("/idle");
  console.log(`${res.status} ${await res.text()}, now idle`);
  // The pooled connection stays open on purpose: it must not hold the process.
} else if (mode === "pending") {
  const listener = listen();
  console.log(`waiting ${listener.addr.port}`);
  const conn = await listener.accept();
  console.log("accepted");
  console.log(`read ${await conn.read(new Uint8Array(8))}`);
  conn.close();
  listener.close();
} else if (mode === "gc") {
  const collect = garbageCollector();
  if (!collect) throw new Error("gc mode needs --expose-gc (Node, Deno) or Bun");
  const loop = reactor(adapter);
  const fd = adapter.libc.eventfd(0, 0o2000000 | 0o4000);
  loop.register(fd);
  const one = new Uint8Array(8);
  one[0] = 1;
  let woke = 0;
  for (let i = 0; i < 20; i++) {
    for (let j = 0; j < 3; j++) {
      collect();
      await new Promise((r) => setTimeout(r, 5));
    }
    adapter.libc.read(fd, new Uint8Array(8)); // drained: the next write is a fresh edge
    const parked = loop.wait(fd, "read");
    setTimeout(() => adapter.libc.write(fd, one), 5);
    await parked;
    woke++;
  }
  loop.unregister(fd);
  adapter.libc.close(fd);
  console.log(`woke ${woke} times across collections`);
} else {
  throw new TypeError(`mode must be idle, unref, http-idle, pending, worker or gc, got ${mode}`);
}
