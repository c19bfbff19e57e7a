import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adapter, SYMBOLS } from "../../ffi/mod.ts";
import { MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM } from "../../src/constants.ts";
import { EBADF, EINVAL, ENOTSOCK } from "../../src/errno.ts";
import { AF_UNIX, sockaddrUn } from "../../src/hybrid/addr.ts";
import { reactor } from "../../src/reactor.ts";
import { garbageCollector, RUNTIME, withTimeout } from "../helpers.ts";
import { Peer, runOn } from "../e2e/procs.ts";

test("the adapter matches the runtime it runs on", () => {
  assert.equal(adapter.runtime, RUNTIME);
  // Bun adopts streams into its own loop; Deno and Node have no way to (Node's net refuses a
  // vsock fd as "UNKNOWN"), so they must not claim one.
  assert.equal(typeof adapter.adoptStream, adapter.runtime === "bun" ? "function" : "undefined");
});

test("every libc call the adapter offers is in the one symbol table, and back", () => {
  const offered = Object.keys(adapter.libc).sort();
  // epoll_wait is only ever called off-thread by the waiter; __errno_location feeds errno reads.
  const table = Object.keys(SYMBOLS).filter((n) => n !== "epoll_wait" && n !== "__errno_location").sort();
  assert.deepEqual(offered, table);
  for (const name of offered) assert.equal(typeof adapter.libc[name as keyof typeof adapter.libc], "function", name);
});

test("failed calls return -errno, read right after the call", () => {
  assert.equal(adapter.libc.close(-1), -EBADF);
  assert.equal(adapter.libc.socket(40, 99, 0), -EINVAL);
  // A fd that is not a socket: errno must be this call's, not the previous one's.
  const dev = adapter.libc.open(new TextEncoder().encode("/dev/null\0"), 0o2000000);
  assert.ok(dev >= 0);
  assert.equal(adapter.libc.listen(dev, 1), -ENOTSOCK);
  assert.equal(adapter.libc.close(dev), 0);
  assert.equal(adapter.libc.close(dev), -EBADF);
});

test("buffers are passed at their byte offset and usize lengths are honoured", () => {
  const fd = adapter.libc.eventfd(0, 0o2000000 | 0o4000);
  assert.ok(fd >= 0);
  const big = new Uint8Array(32);
  new DataView(big.buffer).setBigUint64(8, 5n, true);
  assert.equal(adapter.libc.write(fd, big.subarray(8, 16)), 8);
  const out = new Uint8Array(32);
  assert.equal(adapter.libc.read(fd, out.subarray(16, 24)), 8);
  assert.equal(new DataView(out.buffer).getBigUint64(16, true), 5n);
  assert.deepEqual([...out.subarray(0, 16)], new Array(16).fill(0));
  assert.equal(adapter.libc.read(fd, out.subarray(16, 24)), -11); // EAGAIN: counter drained
  adapter.libc.close(fd);
});

test("the reactor wakes a parked waiter from the epoll waiter, and on unregister", async () => {
  const loop = reactor(adapter);
  const fd = adapter.libc.eventfd(0, 0o2000000 | 0o4000);
  loop.register(fd);
  try {
    let woke = false;
    const parked = loop.wait(fd, "read").then(() => (woke = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(woke, false, "woke before the fd was readable");
    const one = new Uint8Array(8);
    one[0] = 1;
    adapter.libc.write(fd, one); // readable now: the event carries this fd in epoll_event.data
    await withTimeout(parked, 5000, "readiness never arrived");
    const second = loop.wait(fd, "read");
    loop.unregister(fd);
    await withTimeout(second, 1000, "unregister did not wake the waiter");
  } finally {
    loop.unregister(fd);
    adapter.libc.close(fd);
  }
});

test("a worker thread that used the reactor ends cleanly, and so does its process", async () => {
  // On Node the reactor's libuv handle lives on the worker's own loop, which Node closes when the
  // worker ends, aborting the process if the handle were still open.
  const child = new Peer(...runOn(RUNTIME, "test/peers/lifetime_child.ts", "worker"));
  try {
    const out = await child.done(30_000);
    assert.deepEqual(out.trim().split("\n"), ["accept in the worker: EBADF", "worker exited 0"]);
  } finally {
    child.kill();
  }
});

test("the reactor keeps waking across full garbage collections", async () => {
  // node:ffi frees a library's registered callbacks once its DynamicLibrary is collected (checked on
  // 26.10.0), and the reactor's libuv poll callback is one: the waiter must keep its library reachable.
  const [command, args] = runOn(RUNTIME, "test/peers/lifetime_child.ts", "gc");
  const flag = RUNTIME === "node" ? ["--expose-gc"] : RUNTIME === "deno" ? ["--v8-flags=--expose-gc"] : [];
  const at = RUNTIME === "deno" ? 1 : 0; // after `run` for Deno
  const child = new Peer(command, [...args.slice(0, at), ...flag, ...args.slice(at)]);
  try {
    const out = await child.done(60_000);
    assert.equal(out.trim(), "woke 20 times across collections");
  } finally {
    child.kill();
  }
});

test("sendOffThread: 1,600 sends of 128 KiB arrive whole, and the senders keep no copies (RSS stays flat)", async () => {
  // A blocking Unix datagram pair stands in for a SEQPACKET socket: one send is one message, and the
  // sender blocks while the receiver's queue is full, as vsock's does.
  const libc = adapter.libc;
  const dir = mkdtempSync(join(tmpdir(), "vsock-sender-"));
  const receiver = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const sender = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const SIZE = 128 * 1024, WARM = 100, COUNT = 1600, PARALLEL = adapter.maxSendsInFlight;
  const counts = new Map<number, number>();
  let received = 0, corrupted = 0;
  const buffer = new Uint8Array(SIZE + 1);
  const drain = setInterval(() => {
    for (let n; (n = libc.recv(receiver, buffer, MSG_DONTWAIT)) > 0;) {
      const value = buffer[0];
      if (n !== SIZE || buffer[SIZE - 1] !== value || buffer[SIZE >> 1] !== value) corrupted++;
      counts.set(value, (counts.get(value) ?? 0) + 1);
      received++;
    }
  }, 1);
  try {
    assert.ok(receiver >= 0 && sender >= 0);
    assert.equal(libc.bind(receiver, sockaddrUn(join(dir, "r"))), 0);
    assert.equal(libc.connect(sender, sockaddrUn(join(dir, "r"))), 0);
    let next = 0;
    const sendUpTo = (total: number): Promise<void[]> =>
      Promise.all(Array.from({ length: PARALLEL }, async () => {
        const message = new Uint8Array(SIZE);
        while (next < total) {
          message.fill(next++ % 251); // reused at once: the sender must have taken its own copy
          assert.equal(await adapter.sendOffThread(sender, message), SIZE);
        }
      }));
    await sendUpTo(WARM); // every worker exists now
    garbageCollector()?.();
    const before = process.memoryUsage().rss;
    await sendUpTo(COUNT);
    await withTimeout(
      (async () => {
        while (received < COUNT) await new Promise((r) => setTimeout(r, 5));
      })(),
      30_000,
      `only ${received} of ${COUNT} messages arrived`,
    );
    garbageCollector()?.();
    const grown = (process.memoryUsage().rss - before) / 1048576;
    assert.equal(corrupted, 0, "a message arrived cut or mixed");
    for (let v = 0; v < 251; v++) {
      const expected = Math.floor(COUNT / 251) + (v < COUNT % 251 ? 1 : 0);
      assert.equal(counts.get(v) ?? 0, expected, `messages filled with ${v}`);
    }
    // 200 MiB went through; a per-send copy left in a worker's heap showed as +100 MiB and more on Node.
    assert.ok(grown < 48, `RSS grew ${grown.toFixed(0)} MiB over ${COUNT} sends`);
  } finally {
    clearInterval(drain);
    libc.close(sender);
    libc.close(receiver);
    rmSync(dir, { recursive: true, force: true });
  }
});
