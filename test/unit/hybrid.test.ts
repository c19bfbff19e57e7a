/**
 * Hybrid vsock without any vsock: the address, its `sockaddr_un`, option
 * checks, and the whole host side (handshake, its quirks and errors, the
 * guest-initiated listener and its socket file) against an in-process fake
 * VMM on a Unix socket. The real-vsock bridge is test/e2e/hybrid.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createConnection } from "node:net";
import { existsSync, lstatSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { connect, HybridAddr, listen, VMADDR_PORT_ANY, VsockError } from "../../mod.ts";
import { AF_UNIX, SOCKADDR_UN_SIZE, sockaddrUn } from "../../src/hybrid/addr.ts";
import { parseHybridConnect } from "../../src/hybrid/connect.ts";
import { libc } from "../../src/socket.ts";
import { eventually, openFds, withTimeout } from "../helpers.ts";
import { misreportErrno } from "../misreport.ts";
import { EAGAIN } from "../../src/errno.ts";
import { concat, pattern, sha256 } from "../e2e/data.ts";
import { FakeVmm } from "./fake_vmm.ts";
import { BUN, DENO, Peer, ROOT } from "../e2e/procs.ts";

const SOCK_STREAM = 1;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "hybrid-"));
}

async function readN(conn: { read(p: Uint8Array): Promise<number | null> }, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const got = await conn.read(out.subarray(at));
    if (got === null) throw new Error(`EOF after ${at} of ${n} bytes`);
    at += got;
  }
  return out;
}

async function rejectsWith(promise: Promise<unknown>, code: string, ...words: string[]): Promise<VsockError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof VsockError, `expected a VsockError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    for (const word of words) assert.ok(error.message.includes(word), `"${word}" not in: ${error.message}`);
    return error;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

// ------------------------------------------------------------------ address

test("HybridAddr: parse and toString round-trip, percent-encoding the path", () => {
  const a = HybridAddr.parse("unix:///run/vm1/v.sock?port=52");
  assert.equal(a.transport, "hybrid");
  assert.equal(a.path, "/run/vm1/v.sock");
  assert.equal(a.port, 52);
  assert.equal(a.listenPath, "/run/vm1/v.sock_52");
  assert.equal(a.toString(), "unix:///run/vm1/v.sock?port=52");
  assert.ok(HybridAddr.parse(" UNIX:///run/vm1/v.sock?port=52 ").equals(a));
  const odd = new HybridAddr("/tmp/a b?c#d%e.sock", 7);
  assert.equal(odd.toString(), "unix:///tmp/a%20b%3Fc%23d%25e.sock?port=7");
  assert.ok(HybridAddr.parse(odd.toString()).equals(odd));
  const any = new HybridAddr("/v.sock", VMADDR_PORT_ANY);
  assert.equal(any.toString(), "unix:///v.sock?port=*");
  assert.ok(HybridAddr.parse(any.toString()).equals(any));
  // A relative path in the object form is made absolute at once.
  assert.equal(new HybridAddr("v.sock", 1).path, join(process.cwd(), "v.sock"));
});

test("HybridAddr.parse rejects ambiguity with a TypeError naming it", () => {
  const cases: [string, RegExp][] = [
    ["unix:///run/v.sock", /no \?port=N/],
    ["unix:///run/v.sock?port=1&port=2", /more than once/],
    ["unix://run/v.sock?port=1", /absolute path/],
    ["unix:v.sock?port=1", /must start with unix:\/\//],
    ["vsock://1:52", /must start with unix:\/\//],
    ["unix:///run/v.sock?port=abc", /invalid hybrid vsock port "abc"/],
    ["unix:///run/v.sock?port=", /invalid hybrid vsock port ""/],
    ["unix:///run/v.sock?port=4294967296", /invalid hybrid vsock port/],
    ["unix:///run/v.sock?port=1&cid=3", /unknown hybrid vsock address option "cid=3"/],
    ["unix:///run/v.sock?port=1#x", /#fragment/],
    ["unix:///run/%zz.sock?port=1", /malformed %-escape/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => HybridAddr.parse(text), { name: "TypeError", message }, text);
  }
});

test("HybridAddr: bad paths and ports are TypeError/RangeError", () => {
  assert.throws(() => new HybridAddr("", 1), TypeError);
  assert.throws(() => new HybridAddr("/a\0b", 1), /NUL/);
  assert.throws(() => new HybridAddr("/x", -1), RangeError);
  assert.throws(() => new HybridAddr("/x", 1.5), TypeError);
  assert.throws(() => new HybridAddr("/x", 2 ** 32), RangeError);
  assert.throws(() => new HybridAddr("/" + "a".repeat(107), 1), {
    name: "RangeError",
    message: /108 bytes.*at most 107/,
  });
  assert.equal(new HybridAddr("/" + "a".repeat(106), 1).path.length, 107);
});

test("sockaddr_un: 110 bytes, AF_UNIX little-endian, NUL-terminated path", () => {
  const path = "/run/vm1/v.sock";
  const bytes = sockaddrUn(path);
  assert.equal(bytes.byteLength, SOCKADDR_UN_SIZE);
  assert.equal(bytes[0] | (bytes[1] << 8), AF_UNIX);
  assert.deepEqual(bytes.subarray(2, 2 + path.length), new TextEncoder().encode(path));
  assert.ok(bytes.subarray(2 + path.length).every((b) => b === 0));
  assert.deepEqual(new HybridAddr(path, 1).toBytes(), bytes);
  const longest = "/" + "é".repeat(53); // 107 bytes of UTF-8
  assert.equal(sockaddrUn(longest)[2 + 106], 0xa9);
  assert.equal(sockaddrUn(longest)[2 + 107], 0);
  assert.throws(() => sockaddrUn(longest + "x"), RangeError);
});

// ------------------------------------------------------------------ options

test("connect/listen: hybrid options are checked before any socket exists", async () => {
  const before = openFds();
  const bad: [Record<string, unknown>, string, RegExp][] = [
    [{ uds: "/x", port: 1, cid: 3 }, "TypeError", /"cid" does not apply to hybrid/],
    [{ uds: "/x", port: 1, bufferSize: 4096 }, "TypeError", /"bufferSize" does not apply/],
    [{ uds: "/x", port: 1, type: "seqpacket" }, "TypeError", /streams only/],
    [{ uds: "/x", port: 1, retries: -1 }, "RangeError", /retries/],
    [{ uds: "/x", port: 1, retries: 1.5 }, "RangeError", /retries/],
    [{ uds: "/x", port: 1, handshakeTimeout: 0 }, "RangeError", /handshakeTimeout must be a positive/],
    [{ uds: "/x", port: 1, timeout: -1 }, "RangeError", /timeout/],
    [{ uds: "/x", port: 1, busyPoll: -1 }, "RangeError", /busyPoll/],
    [{ uds: "/x", port: 1, signal: "no" }, "TypeError", /AbortSignal/],
    [{ uds: "/x", port: VMADDR_PORT_ANY }, "RangeError", /needs a guest port/],
    [{ uds: "", port: 1 }, "TypeError", /non-empty path/],
    [{ uds: "/x" }, "TypeError", /port must be an integer/],
  ];
  for (const [options, name, message] of bad) {
    await assert.rejects(connect(options as unknown as { uds: string; port: number }), { name, message });
  }
  await assert.rejects(connect("unix:///x?port=1&port=2"), TypeError);
  assert.throws(() => listen({ uds: "/x", port: 1, cid: 3 } as unknown as { uds: string; port: number }), TypeError);
  assert.throws(() => listen({ uds: "/x", port: VMADDR_PORT_ANY }), /needs a host port/);
  assert.throws(() => listen({ uds: "/" + "a".repeat(100), port: 1234567 }), RangeError); // the _port suffix too
  assert.throws(() => listen("unix:///x"), /no \?port=N/);
  assert.equal(openFds(), before);
});

// ------------------------------------------------------------------ handshake

test("handshake: one CONNECT write, OK checked by prefix, echo both ways, honest addresses", async () => {
  const vmm = await FakeVmm.start({ splitSensitive: true });
  try {
    using conn = await connect({ uds: vmm.path, port: 52 });
    assert.deepEqual(vmm.requests, ["CONNECT 52"]);
    assert.ok(conn.remoteAddr.equals(new HybridAddr(vmm.path, 52)));
    assert.equal(conn.localAddr.transport, "hybrid");
    assert.equal(conn.localAddr.port, 1073741824);
    await conn.writeAll(new TextEncoder().encode("ping"));
    assert.equal(new TextDecoder().decode(await readN(conn, 4)), "ping");
    assert.equal(vmm.earlyBytes, false);
  } finally {
    await vmm.close();
  }
});

test("busyPoll applies to hybrid connections too: parsed as given, and 200 echoed round trips arrive intact", async () => {
  const vmm = await FakeVmm.start();
  try {
    assert.equal(parseHybridConnect({ uds: vmm.path, port: 52, busyPoll: 1_000 }).busyPoll, 1_000);
    assert.equal(parseHybridConnect({ uds: vmm.path, port: 52 }).busyPoll, 0);
    using conn = await connect({ uds: vmm.path, port: 52, busyPoll: 1_000 });
    for (let i = 0; i < 200; i++) {
      const message = new TextEncoder().encode(`round ${i}`);
      await conn.writeAll(message);
      assert.equal(new TextDecoder().decode(await readN(conn, message.byteLength)), `round ${i}`);
    }
  } finally {
    await vmm.close();
  }
});

test("handshake: vhost-device-vsock's `OK <guest port>` and the string form work too", async () => {
  const vmm = await FakeVmm.start({ reply: "OK 52\n" });
  try {
    using conn = await connect(`unix://${vmm.path}?port=52`);
    assert.equal(conn.localAddr.port, 52);
    assert.equal(conn.remoteAddr.toString(), `unix://${vmm.path}?port=52`);
  } finally {
    await vmm.close();
  }
});

test("leftover bytes: data coalesced with the OK line is read first and in order", async () => {
  const greeting = pattern(100_000); // more than one read, so order matters
  const vmm = await FakeVmm.start({ coalesce: true, greeting });
  try {
    for (let i = 0; i < 5; i++) {
      using conn = await connect({ uds: vmm.path, port: 52 });
      assert.equal(sha256(await readN(conn, greeting.byteLength)), sha256(greeting));
      await conn.writeAll(new TextEncoder().encode("after"));
      assert.equal(new TextDecoder().decode(await readN(conn, 5)), "after");
    }
    // And through the readable stream (the same StreamIO underneath).
    using conn = await connect({ uds: vmm.path, port: 52 });
    const reader = conn.readable.getReader();
    const chunks: Uint8Array[] = [];
    let got = 0;
    while (got < greeting.byteLength) {
      const { value } = await reader.read();
      chunks.push(value!);
      got += value!.byteLength;
    }
    assert.equal(sha256(concat(chunks)), sha256(greeting));
  } finally {
    await vmm.close();
  }
});

test("EPROTO: a reply that is not `OK ` names the line it got", async () => {
  for (
    const [reply, words] of [
      ["ERR no such port\n", ['"ERR no such port"', 'expected "OK <port>"']],
      ["ok 5\n", ['"ok 5"']],
      ["X".repeat(40), ["no end of line within 32 bytes"]],
    ] as const
  ) {
    const vmm = await FakeVmm.start({ reply });
    try {
      const before = openFds();
      const error = await rejectsWith(connect({ uds: vmm.path, port: 52 }), "EPROTO", ...words);
      assert.equal(error.errno, 71);
      assert.ok(error.address instanceof HybridAddr);
      await eventually(() => openFds() === before, 2000, `fd count back to ${before}`);
    } finally {
      await vmm.close();
    }
  }
});

test("ECONNRESET: the VMM closing during the handshake names the likely causes", async () => {
  const vmm = await FakeVmm.start({ silentClose: true });
  try {
    await rejectsWith(
      connect({ uds: vmm.path, port: 52 }),
      "ECONNRESET",
      "nothing is listening on guest port 52",
      "VM is not running",
    );
  } finally {
    await vmm.close();
  }
});

test("ETIMEDOUT: a VMM that never answers is given handshakeTimeout, then the fd is closed", async () => {
  const vmm = await FakeVmm.start({ neverAnswer: true });
  try {
    const before = openFds();
    const started = Date.now();
    await rejectsWith(connect({ uds: vmm.path, port: 52, handshakeTimeout: 200 }), "ETIMEDOUT", "200 ms");
    const took = Date.now() - started;
    assert.ok(took >= 190 && took < 2000, `took ${took} ms`);
    // The fake VMM runs in this process: its end closes once it reads our EOF.
    await eventually(() => openFds() === before, 2000, `fd count back to ${before}`);
  } finally {
    await vmm.close();
  }
});

test("retries: a guest that starts listening late is reached; without retries it is ECONNRESET", async () => {
  const vmm = await FakeVmm.start({ failFirst: 2 });
  try {
    await rejectsWith(connect({ uds: vmm.path, port: 52 }), "ECONNRESET");
    assert.equal(vmm.connections, 1);
    const started = Date.now();
    using conn = await connect({ uds: vmm.path, port: 52, retries: 3 });
    assert.equal(vmm.connections, 3); // one failure left, then success
    assert.ok(Date.now() - started >= 90, "retried without a pause");
    await conn.writeAll(new Uint8Array([1]));
    assert.deepEqual(await readN(conn, 1), new Uint8Array([1]));
  } finally {
    await vmm.close();
  }
  const late = await FakeVmm.start({ failFirst: 5 });
  try {
    await rejectsWith(connect({ uds: late.path, port: 52, retries: 2 }), "ECONNRESET");
    assert.equal(late.connections, 3);
  } finally {
    await late.close();
  }
});

test("timeout bounds the whole connect, retries included; timed-out handshakes are retried", async () => {
  const vmm = await FakeVmm.start({ neverAnswer: true });
  try {
    const before = openFds();
    const started = Date.now();
    await rejectsWith(
      connect({ uds: vmm.path, port: 52, handshakeTimeout: 100, retries: 100, timeout: 700 }),
      "ETIMEDOUT",
      "timed out after 700 ms",
    );
    const took = Date.now() - started;
    assert.ok(took >= 690 && took < 3000, `took ${took} ms`);
    assert.ok(vmm.connections >= 2, `only ${vmm.connections} attempt(s)`);
    await eventually(() => openFds() === before, 2000, `fd count back to ${before}`);
  } finally {
    await vmm.close();
  }
});

test("signal: aborting during the handshake rejects with the reason and leaks nothing", async () => {
  const vmm = await FakeVmm.start({ neverAnswer: true });
  try {
    const before = openFds();
    const controller = new AbortController();
    const pending = connect({ uds: vmm.path, port: 52, signal: controller.signal });
    setTimeout(() => controller.abort(new Error("stop")), 50);
    await assert.rejects(withTimeout(pending, 2000, "abort ignored"), /stop/);
    await eventually(() => openFds() === before, 2000, `fd count back to ${before}`);
    await assert.rejects(connect({ uds: vmm.path, port: 52, signal: AbortSignal.abort(new Error("early")) }), /early/);
  } finally {
    await vmm.close();
  }
});

test("Unix socket errors name the path: ENOENT, ECONNREFUSED (stale socket, regular file)", async () => {
  const dir = tempDir();
  try {
    await rejectsWith(connect({ uds: join(dir, "none.sock"), port: 52 }), "ENOENT", join(dir, "none.sock"));
    // A socket file nobody listens on: what a crashed VMM leaves behind.
    const stale = join(dir, "stale.sock");
    const fd = libc.socket(AF_UNIX, SOCK_STREAM, 0);
    assert.equal(libc.bind(fd, sockaddrUn(stale)), 0);
    libc.close(fd);
    await rejectsWith(connect({ uds: stale, port: 52 }), "ECONNREFUSED", stale, "not running");
    const file = join(dir, "file");
    writeFileSync(file, "x");
    await rejectsWith(connect({ uds: file, port: 52 }), "ECONNREFUSED", file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("half-close reaches the VMM; the answer still arrives", async () => {
  const vmm = await FakeVmm.start();
  try {
    using conn = await connect({ uds: vmm.path, port: 52 });
    await conn.writeAll(new TextEncoder().encode("last words"));
    await conn.closeWrite();
    assert.equal(new TextDecoder().decode(await readN(conn, 10)), "last words");
    assert.equal(await conn.read(new Uint8Array(1)), null);
    assert.equal(vmm.sawEnd, true);
  } finally {
    await vmm.close();
  }
});

test("streams: 4 MiB through readable/writable, hash-checked", async () => {
  const vmm = await FakeVmm.start();
  try {
    using conn = await connect({ uds: vmm.path, port: 52 });
    const data = pattern(4 << 20);
    const writing = (async () => {
      const writer = conn.writable.getWriter();
      for (let at = 0; at < data.byteLength; at += 65536) await writer.write(data.subarray(at, at + 65536));
      await writer.close();
    })();
    const chunks: Uint8Array[] = [];
    for await (const chunk of conn.readable) chunks.push(chunk);
    await writing;
    assert.equal(sha256(concat(chunks)), sha256(data));
  } finally {
    await vmm.close();
  }
});

test("2,000 handshakes leave the fd count flat", async () => {
  const vmm = await FakeVmm.start();
  try {
    const one = async (): Promise<void> => {
      const conn = await connect({ uds: vmm.path, port: 52 });
      conn.close();
    };
    await one();
    const before = openFds();
    for (let i = 0; i < 2000; i++) await one();
    assert.ok(openFds() <= before + 2, `${before} fds before, ${openFds()} after`);
  } finally {
    await vmm.close();
  }
});

// ------------------------------------------------------------------ listen (guest-initiated)

/** What a VMM does for a guest dialing host port P: connect to `<uds>_<P>`, no preamble. */
function vmmDials(path: string): Promise<import("node:net").Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path, allowHalfOpen: true }, () => resolve(socket));
    socket.once("error", reject);
  });
}

test("listen: serves `<uds>_<port>` with no preamble, and removes its file on close", async () => {
  const dir = tempDir();
  try {
    const uds = join(dir, "v.sock");
    const listener = listen({ uds, port: 1234 });
    assert.equal(listener.path, `${uds}_1234`);
    assert.ok(listener.addr.equals(new HybridAddr(uds, 1234)));
    assert.ok(lstatSync(listener.path).isSocket());
    const accepting = listener.accept();
    const vmm = await vmmDials(listener.path);
    using conn = await accepting;
    assert.ok(conn.localAddr.equals(listener.addr));
    assert.equal(conn.remoteAddr.port, VMADDR_PORT_ANY);
    vmm.write("hello from the guest");
    assert.equal(new TextDecoder().decode(await readN(conn, 20)), "hello from the guest");
    const echoed = new Promise<string>((resolve) =>
      vmm.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d)))
    );
    await conn.writeAll(new TextEncoder().encode("hi"));
    assert.equal(await echoed, "hi");
    vmm.destroy();
    listener.close();
    assert.equal(existsSync(listener.path), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("listen: an accept4 whose EAGAIN reads as ENOENT is asked again; the accept waits and gets the connection", async () => {
  const dir = tempDir();
  const misread = misreportErrno("accept4", -EAGAIN, 2 /* ENOENT */);
  try {
    const listener = listen({ uds: join(dir, "v.sock"), port: 7 });
    const accepting = listener.accept();
    const vmm = await vmmDials(listener.path);
    using conn = await withTimeout(accepting, 5000, "accept never settled");
    assert.ok(misread.used(), "accept4 never said EAGAIN: the misread was not exercised");
    vmm.write("x");
    assert.equal(new TextDecoder().decode(await readN(conn, 1)), "x");
    vmm.destroy();
    listener.close();
  } finally {
    misread.undo();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("listen: a stale socket file is removed; a live listener's file and a non-socket never are", async () => {
  const dir = tempDir();
  try {
    const uds = join(dir, "v.sock");
    const path = `${uds}_5`;
    // Stale: bound, never listened on, fd closed.
    const fd = libc.socket(AF_UNIX, SOCK_STREAM, 0);
    assert.equal(libc.bind(fd, sockaddrUn(path)), 0);
    libc.close(fd);
    const first = listen({ uds, port: 5 });
    // Live: a second listen on the same path must fail and leave the first intact.
    assert.throws(() => listen({ uds, port: 5 }), {
      name: "VsockError",
      code: "EADDRINUSE",
      message: /a socket is listening on .*\(\/proc\/net\/unix\)/,
    });
    assert.throws(() => listen(`unix://${uds}?port=5`), { code: "EADDRINUSE" });
    assert.ok(lstatSync(path).isSocket());
    // The live listener was asked through /proc/net/unix, not by a stray connection: the next
    // connection it accepts is the real one.
    const accepting = first.accept();
    const vmm = await vmmDials(path);
    vmm.write("x");
    using conn = await accepting;
    assert.deepEqual(await readN(conn, 1), new TextEncoder().encode("x"));
    vmm.destroy();
    first.close();
    // Not a socket: left alone.
    writeFileSync(path, "mine");
    assert.throws(() => listen({ uds, port: 5 }), { code: "EADDRINUSE", message: /is not a socket; not removing it/ });
    assert.ok(lstatSync(path).isFile());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("listen: close() does not remove a file that is no longer its own", () => {
  const dir = tempDir();
  try {
    const uds = join(dir, "v.sock");
    const listener = listen({ uds, port: 9 });
    renameSync(listener.path, join(dir, "moved"));
    const other = listen({ uds, port: 9 }); // a new listener at the same path
    listener.close();
    assert.ok(lstatSync(other.path).isSocket(), "closing the old listener removed the new one's file");
    other.close();
    assert.equal(existsSync(other.path), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("listen: close() settles a pending accept and ends for-await", async () => {
  const dir = tempDir();
  try {
    const listener = listen({ uds: join(dir, "v.sock"), port: 3 });
    const pending = listener.accept();
    const loop = (async () => {
      for await (const _ of listener) { /* none arrive */ }
    })();
    listener.close();
    await assert.rejects(pending, { code: "EBADF" });
    await withTimeout(loop, 2000, "for await did not end");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ the example

/** The example under the runtime running this test. */
function example(...args: string[]): Peer {
  return "Bun" in globalThis ? new Peer(BUN, [`${ROOT}examples/hybrid_host.ts`, ...args]) : new Peer(DENO, [
    "run",
    "--allow-ffi",
    "--allow-read",
    "--allow-write",
    `${ROOT}examples/hybrid_host.ts`,
    ...args,
  ]);
}

test("examples/hybrid_host.ts: dial asks the guest and prints its answer; serve echoes guest connections", async () => {
  const vmm = await FakeVmm.start({ failFirst: 1 }); // the agent is not up for the first attempt
  try {
    const out = await example("dial", vmm.path, "52", "hello there").done(30_000);
    assert.match(out, /gave us host port 1073741824/);
    assert.match(out, /answer: hello there/);
    assert.equal(vmm.connections, 2);
  } finally {
    await vmm.close();
  }
  const dir = tempDir();
  const server = example("serve", join(dir, "v.sock"), "1234");
  try {
    await server.match(/listening on .*v\.sock_1234/);
    const guest = await vmmDials(join(dir, "v.sock_1234"));
    const echoed = new Promise<string>((resolve) =>
      guest.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d)))
    );
    guest.write("ping");
    assert.equal(await withTimeout(echoed, 10_000, "no echo"), "ping");
    guest.destroy();
  } finally {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
