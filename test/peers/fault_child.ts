/**
 * Child processes for the fault tests (test/e2e/faults.test.ts), for faults
 * that must not hit the test runner itself:
 *
 *   fault_child.ts emfile   run under a low `ulimit -n`: fills the fd table, then
 *                           checks connect/accept report EMFILE, nothing stays
 *                           registered in the reactor, and a `for await` accept
 *                           loop serves again once fds are freed
 *   fault_child.ts gc       100 checksummed transfers at once while forcing
 *                           garbage collections in a loop (needs Bun, or
 *                           --expose-gc on Node / --v8-flags=--expose-gc on Deno)
 *
 * Prints one line per check and "ok" at the end; any failure exits non-zero.
 */
import { closeSync, openSync } from "node:fs";
import { createHash } from "node:crypto";
import process from "node:process";
import { connect, listen, type VsockConn, VsockError } from "../../mod.ts";
import { reactorStats } from "../../src/reactor.ts";
import { garbageCollector } from "../helpers.ts";

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

function codeOf(error: unknown): string {
  return error instanceof VsockError ? error.code : `not a VsockError: ${String(error)}`;
}

async function emfile(): Promise<void> {
  // Anything the runtime sets up lazily for stdout happens now, while fds are free.
  console.log("start");
  const listener = listen();
  const port = listener.addr.port;
  // A connection waiting in the backlog (established by the kernel before accept).
  const queued = await connect({ cid: 1, port });
  const before = reactorStats().registered;
  // Deno 2.9.6 sets up its signal handling (a self-pipe) on the first signal
  // listener and panics if no fd is free then (ext/signals/lib.rs:58); its
  // runtime registers one lazily, so make that happen while fds are free.
  const deno = (globalThis as { Deno?: { addSignalListener(s: string, f: () => void): void } }).Deno;
  deno?.addSignalListener("SIGUSR2", () => {});
  const filler: number[] = [];
  const fill = (): number => {
    const had = filler.length;
    for (;;) {
      try {
        filler.push(openSync("/dev/null", "r"));
      } catch (error) {
        if ((error as { code?: string }).code === "EMFILE") return filler.length - had;
        throw error;
      }
    }
  };
  fill();
  // The runtime may hold an fd of its own for a moment and close it later (on
  // Bun, 1-3 of 40 runs filled one fd fewer and the connect below succeeded).
  // Top up until a pause frees none.
  do await new Promise((resolve) => setTimeout(resolve, 100)); while (fill() > 0);
  console.log(`filled ${filler.length} fds`);
  try {
    await connect({ cid: 1, port });
    fail("connect succeeded with no fd free");
  } catch (error) {
    if (codeOf(error) !== "EMFILE") fail(`connect: ${codeOf(error)}`);
    if (!(error instanceof VsockError) || !error.message.includes("too many open files")) {
      fail(`connect's message does not say why: ${String(error)}`);
    }
  }
  console.log("connect EMFILE");
  try {
    await listener.accept();
    fail("accept succeeded with no fd free");
  } catch (error) {
    if (codeOf(error) !== "EMFILE") fail(`accept: ${codeOf(error)}`);
  }
  console.log("accept EMFILE");
  const after = reactorStats();
  if (after.registered !== before) fail(`reactor registrations ${before} -> ${after.registered}`);
  console.log("no half registration");
  // A server's accept loop, running while no fd is free; fds come back later.
  const served: VsockConn[] = [];
  const loop = (async () => {
    for await (const conn of listener) {
      served.push(conn);
      await conn.writeAll(new Uint8Array([7]));
      if (served.length === 2) return;
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 300)); // the loop meets EMFILE meanwhile
  for (const fd of filler.splice(0, 16)) closeSync(fd);
  const one = new Uint8Array(1);
  if (await queued.read(one) !== 1 || one[0] !== 7) fail("the queued connection was not served");
  const fresh = await connect({ cid: 1, port });
  if (await fresh.read(one) !== 1 || one[0] !== 7) fail("a new connection was not served");
  await loop;
  console.log("accept loop served 2 after fds freed");
  for (const conn of [...served, queued, fresh]) conn.close();
  listener.close();
  for (const fd of filler) closeSync(fd);
  if (reactorStats().registered !== 0) fail(`reactor still has ${reactorStats().registered} registrations`);
}

function collector(): () => void {
  const gc = garbageCollector();
  if (!gc) fail("no gc(): run Node with --expose-gc, Deno with --v8-flags=--expose-gc");
  return gc;
}

function payload(i: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (i + 1) * 2654435761;
  for (let k = 0; k < size; k++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    out[k] = x & 0xff;
  }
  return out;
}

const sha = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

async function readAll(conn: VsockConn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(24_000);
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) (out.set(c, at), at += c.byteLength);
  return out;
}

async function gcPressure(): Promise<void> {
  const gc = collector();
  const N = 100;
  const SIZE = 100_000;
  const listener = listen();
  let running = true;
  let collections = 0;
  const waiting: (() => void)[] = [];
  /** Resolves after the next forced collection: transfers go on between collections. */
  const nextCollection = (): Promise<void> => new Promise((resolve) => waiting.push(resolve));
  const collecting = (async () => {
    while (running) {
      gc();
      collections++;
      for (const resolve of waiting.splice(0)) resolve();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    for (const resolve of waiting.splice(0)) resolve();
  })();
  const echoes = (async () => {
    const done: Promise<void>[] = [];
    for (let i = 0; i < N; i++) {
      const conn = await listener.accept();
      // Echo back through the web streams on even connections, read/writeAll on odd ones.
      done.push(
        i % 2 === 0
          ? conn.readable.pipeTo(conn.writable).finally(() => conn.close())
          : readAll(conn).then((data) => conn.writeAll(data)).then(() => conn.closeWrite()).finally(() => conn.close()),
      );
    }
    await Promise.all(done);
  })();
  const results = await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      const data = payload(i, SIZE);
      const conn = await connect({ cid: 1, port: listener.addr.port });
      try {
        const sending = (async () => {
          // Ten pieces, each after a collection, so every transfer spans ten of them.
          for (let at = 0; at < SIZE; at += SIZE / 10) {
            await nextCollection();
            await conn.writeAll(data.subarray(at, at + SIZE / 10));
          }
          await conn.closeWrite();
        })();
        const [back] = await Promise.all([readAll(conn), sending]);
        return sha(back) === sha(data) && back.byteLength === SIZE;
      } finally {
        conn.close();
      }
    }),
  );
  await echoes;
  running = false;
  await collecting;
  listener.close();
  const bad = results.filter((ok) => !ok).length;
  if (bad > 0) fail(`${bad} of ${N} transfers came back corrupted`);
  if (collections < 10) fail(`only ${collections} collections ran`);
  console.log(`${N} transfers intact across at least 10 collections each`);
}

const mode = process.argv[2];
if (mode === "emfile") await emfile();
else if (mode === "gc") await gcPressure();
else fail(`unknown mode ${mode}`);
console.log("ok");
