/**
 * Hybrid vsock end to end: our host side (`connect({ uds, port })`,
 * `listen({ uds, port })`) through test/peers/vmm_mux.py — a python3 VMM
 * multiplexer that behaves like Firecracker's — to real AF_VSOCK listeners
 * and clients on CID 1 inside the test VM.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createConnection } from "node:net";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type HybridAddr, listen, type VsockConn, VsockError, type VsockListener } from "../../mod.ts";
import { AF_UNIX, sockaddrUn } from "../../src/hybrid/addr.ts";
import { libc } from "../../src/socket.ts";
import { eventually, openFds, sleep, withTimeout } from "../helpers.ts";
import { collect, concat, pattern, sha256 } from "./data.ts";
import { Peer, ROOT } from "./procs.ts";

const MiB = 1024 * 1024;
/** The real interpreter behind the `python3` shim: pyenv's shim costs seconds per start in the TCG guest. */
const PYTHON = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();

/** A running vmm_mux.py with its socket in a fresh directory. */
class Mux {
  readonly dir = mkdtempSync(join(tmpdir(), "mux-"));
  readonly uds = join(this.dir, "v.sock");
  readonly peer: Peer;
  guestPorts: number[] = [];

  constructor(args: string[]) {
    this.peer = new Peer(PYTHON, [`${ROOT}test/peers/vmm_mux.py`, this.uds, ...args]);
  }

  static async start(...args: string[]): Promise<Mux> {
    const mux = new Mux(args);
    await mux.peer.match(/^ready$/m);
    mux.guestPorts = [...mux.peer.stdout.matchAll(/^guest-port (\d+)$/gm)].map((m) => Number(m[1]));
    return mux;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.peer.kill();
    await this.peer.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** An AF_VSOCK listener in the "guest" (CID 1) that runs `serve` on every connection. */
function guest(serve: (conn: VsockConn) => Promise<void>): VsockListener {
  const listener = listen({ port: 0xffffffff });
  (async () => {
    for await (const conn of listener) serve(conn).catch(() => {}).finally(() => conn.close());
  })();
  return listener;
}

const echo = (conn: VsockConn): Promise<void> => conn.readable.pipeTo(conn.writable);

async function readN(conn: VsockConn<HybridAddr> | VsockConn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const got = await conn.read(out.subarray(at));
    if (got === null) throw new Error(`EOF after ${at} of ${n} bytes`);
    at += got;
  }
  return out;
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    assert.ok(error instanceof VsockError, String(error));
    return error.code;
  }
}

test("4 MiB host -> guest -> host through the mux, hash-checked (Cloud Hypervisor half-close)", async () => {
  await using mux = await Mux.start("--shutdown", "ch");
  using g = guest(echo);
  using conn = await connect({ uds: mux.uds, port: g.addr.port });
  assert.equal(conn.localAddr.port, 1073741824);
  const data = pattern(4 * MiB); // 16 times vsock's 256 KiB window: every buffer on the way fills and drains
  const sending = (async () => {
    const writer = conn.writable.getWriter();
    for (let at = 0; at < data.byteLength; at += 256 * 1024) await writer.write(data.subarray(at, at + 256 * 1024));
    await writer.close(); // closeWrite: the mux forwards it, the echo ends, we read EOF
  })();
  const back = await collect(conn.readable);
  await sending;
  assert.equal(back.byteLength, data.byteLength);
  assert.equal(sha256(back), sha256(data));
});

test("4 MiB guest -> host over a guest-initiated connection to listen({ uds, port }), and back", async () => {
  await using mux = await Mux.start("--shutdown", "ch", "--guest-port", "any");
  const [port] = mux.guestPorts;
  using host = listen({ uds: mux.uds, port });
  assert.equal(host.path, `${mux.uds}_${port}`);
  const serving = (async () => {
    using conn = await host.accept();
    await conn.readable.pipeTo(conn.writable);
  })();
  using fromGuest = await connect({ cid: 1, port });
  const data = pattern(4 * MiB); // 16 times vsock's 256 KiB window: every buffer on the way fills and drains
  const sending = fromGuest.writeAll(data).then(() => fromGuest.closeWrite());
  const back = await collect(fromGuest.readable);
  await sending;
  await serving;
  assert.equal(sha256(back), sha256(data));
});

test("Firecracker half-close: the host's closeWrite() closes both directions", async () => {
  await using mux = await Mux.start("--shutdown", "fc");
  let guestSawEof!: () => void;
  const eof = new Promise<void>((resolve) => (guestSawEof = resolve));
  using g = guest(async (conn) => {
    const got = await readN(conn, 5);
    assert.equal(await conn.read(new Uint8Array(1)), null);
    guestSawEof();
    await conn.writeAll(got).catch(() => {}); // too late: the VMM has closed the connection
  });
  using conn = await connect({ uds: mux.uds, port: g.addr.port });
  await conn.writeAll(new TextEncoder().encode("hello"));
  await conn.closeWrite();
  await withTimeout(eof, 10_000, "the guest never saw EOF");
  assert.equal(await withTimeout(conn.read(new Uint8Array(5)), 10_000, "no EOF on the host"), null);
});

test("200 concurrent hybrid connections, each echoing its own bytes", async () => {
  await using mux = await Mux.start();
  using g = guest(echo);
  const conns = await Promise.all(
    Array.from({ length: 200 }, () => connect({ uds: mux.uds, port: g.addr.port, handshakeTimeout: 120_000 })),
  );
  try {
    const ok = await Promise.all(conns.map(async (conn, i) => {
      const mine = pattern(1024 + i).subarray(i);
      await conn.writeAll(mine);
      return sha256(await readN(conn, mine.byteLength)) === sha256(mine);
    }));
    assert.equal(ok.filter(Boolean).length, 200);
    assert.equal(new Set(conns.map((c) => c.localAddr.port)).size, 200); // distinct host-side ports
  } finally {
    for (const conn of conns) conn.close();
  }
});

test("leftover bytes: the guest's first bytes coalesced with OK are read first", async () => {
  await using mux = await Mux.start("--coalesce");
  const greeting = pattern(100_000);
  using g = guest(async (conn) => {
    await conn.writeAll(greeting);
    await echo(conn);
  });
  for (let i = 0; i < 10; i++) {
    using conn = await connect({ uds: mux.uds, port: g.addr.port });
    assert.equal(sha256(await readN(conn, greeting.byteLength)), sha256(greeting));
    await conn.writeAll(new TextEncoder().encode("next"));
    assert.equal(new TextDecoder().decode(await readN(conn, 4)), "next");
  }
});

test("the request goes in one write: Firecracker's split-sensitive reader accepts it, a split one is dropped", async () => {
  await using mux = await Mux.start("--split-sensitive");
  using g = guest(echo);
  for (let i = 0; i < 20; i++) {
    using conn = await connect({ uds: mux.uds, port: g.addr.port });
    await conn.writeAll(new Uint8Array([i]));
    assert.deepEqual(await readN(conn, 1), new Uint8Array([i]));
  }
  // The control: the same request in two writes gets no answer, only EOF.
  const raw = createConnection({ path: mux.uds });
  const chunks: Uint8Array[] = [];
  raw.on("data", (d: Uint8Array) => chunks.push(d));
  const closed = new Promise<void>((resolve) => raw.on("close", () => resolve()));
  raw.on("error", () => {});
  await new Promise<void>((resolve) => raw.once("connect", () => resolve()));
  raw.write("CONNE");
  await sleep(200);
  raw.write(`CT ${g.addr.port}\n`);
  await withTimeout(closed, 10_000, "split request not dropped");
  assert.equal(concat(chunks).byteLength, 0);
});

test("errors: ECONNRESET (no guest listener), EPROTO, ETIMEDOUT, ECONNREFUSED after the VMM died, ENOENT", async () => {
  {
    await using mux = await Mux.start();
    const free = listen({ port: 0xffffffff });
    const port = free.addr.port;
    free.close(); // nothing listens on this guest port now
    const error = await connect({ uds: mux.uds, port }).catch((e) => e);
    assert.equal(error.code, "ECONNRESET", String(error));
    assert.match(error.message, new RegExp(`nothing is listening on guest port ${port}.*VM is not running`));
  }
  {
    await using mux = await Mux.start("--reply", "NOPE 42");
    const error = await connect({ uds: mux.uds, port: 5 }).catch((e) => e);
    assert.equal(error.code, "EPROTO", String(error));
    assert.match(error.message, /"NOPE 42"/);
  }
  {
    await using mux = await Mux.start("--never-answer");
    const started = Date.now();
    assert.equal(await code(connect({ uds: mux.uds, port: 5, handshakeTimeout: 300 })), "ETIMEDOUT");
    assert.ok(Date.now() - started >= 290);
  }
  const mux = await Mux.start();
  mux.peer.proc.kill("SIGKILL"); // a crashed VMM leaves its socket file behind
  await mux.peer.exited;
  const refused = await connect({ uds: mux.uds, port: 5 }).catch((e) => e);
  assert.equal(refused.code, "ECONNREFUSED", String(refused));
  assert.ok(refused.message.includes(mux.uds));
  await mux[Symbol.asyncDispose]();
  const missing = await connect({ uds: mux.uds, port: 5 }).catch((e) => e);
  assert.equal(missing.code, "ENOENT", String(missing));
  assert.ok(missing.message.includes(mux.uds));
});

test("retries: a guest agent that starts listening late is reached; without retries it is ECONNRESET", async () => {
  await using mux = await Mux.start();
  const probe = listen({ port: 0xffffffff });
  const port = probe.addr.port;
  probe.close();
  assert.equal(await code(connect({ uds: mux.uds, port })), "ECONNRESET");
  let agent: VsockListener | undefined;
  const boot = sleep(400).then(() => {
    agent = listen({ port });
    (async () => {
      for await (const conn of agent!) echo(conn).catch(() => {}).finally(() => conn.close());
    })();
  });
  try {
    using conn = await connect({ uds: mux.uds, port, retries: 10 });
    await conn.writeAll(new Uint8Array([7]));
    assert.deepEqual(await readN(conn, 1), new Uint8Array([7]));
  } finally {
    await boot;
    agent?.close();
  }
  // --fail-first: the VMM hangs up on the first two; retries: 1 is not enough, 2 is.
  await using flaky = await Mux.start("--fail-first", "2");
  using g = guest(echo);
  assert.equal(await code(connect({ uds: flaky.uds, port: g.addr.port, retries: 1 })), "ECONNRESET");
  using conn = await connect({ uds: flaky.uds, port: g.addr.port, retries: 1 });
  assert.equal(conn.localAddr.port, 1073741824 + 2);
});

test("timeout and signal bound a connect that retries", async () => {
  await using mux = await Mux.start("--never-answer");
  const started = Date.now();
  const error = await connect({ uds: mux.uds, port: 5, handshakeTimeout: 200, retries: 50, timeout: 1000 }).catch((
    e,
  ) => e);
  assert.equal(error.code, "ETIMEDOUT", String(error));
  assert.match(error.message, /timed out after 1000 ms/);
  assert.ok(Date.now() - started < 5000);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("stopped")), 300);
  await assert.rejects(connect({ uds: mux.uds, port: 5, retries: 50, signal: controller.signal }), /stopped/);
});

test("guest-initiated: stale socket file replaced, a live listener's never removed, nothing listening = guest EOF", async () => {
  await using mux = await Mux.start("--guest-port", "any", "--verbose");
  const [port] = mux.guestPorts;
  const path = `${mux.uds}_${port}`;
  // Nothing listening there: the guest's connection ends at once. (Wait for the mux to have tried, so
  // that connection cannot be bridged to the listener made below.)
  {
    using c = await connect({ cid: 1, port });
    const first = c.read(new Uint8Array(1)).catch(() => null);
    await eventually(() => mux.peer.stderr.includes(`${path}: [Errno 2]`), 20_000, "the mux trying <uds>_<port>");
    assert.equal(await withTimeout(first, 10_000, "no EOF"), null);
  }
  // A stale socket file, as a crashed host program leaves it.
  const fd = libc.socket(AF_UNIX, 1, 0);
  assert.equal(libc.bind(fd, sockaddrUn(path)), 0);
  libc.close(fd);
  using host = listen({ uds: mux.uds, port });
  // Told by /proc/net/unix, without a connect that the live listener would have to accept.
  assert.throws(() => listen({ uds: mux.uds, port }), { code: "EADDRINUSE", message: /\/proc\/net\/unix/ });
  const accepted = host.accept();
  using c = await connect({ cid: 1, port });
  using s = await accepted;
  await c.writeAll(new TextEncoder().encode("from guest"));
  assert.equal(new TextDecoder().decode(await readN(s, 10)), "from guest");
  await s.writeAll(new TextEncoder().encode("from host"));
  assert.equal(new TextDecoder().decode(await readN(c, 9)), "from host");
  host.close();
  assert.equal(existsSync(path), false, "close() left its socket file");
});

test("500 handshakes through the mux leave the fd count flat", async () => {
  await using mux = await Mux.start();
  using g = guest(async () => {});
  const one = async (): Promise<void> => {
    const conn = await connect({ uds: mux.uds, port: g.addr.port, handshakeTimeout: 20_000 });
    conn.close();
  };
  for (let i = 0; i < 20; i++) await one();
  const before = openFds();
  // 10 lanes of 50 in a row: the python mux and the TCG guest are slow, and a loaded machine
  // must not push this past the runner's time limit. One fd leaked per handshake would show as 500.
  await Promise.all(Array.from({ length: 10 }, async () => {
    for (let i = 0; i < 50; i++) await one();
  }));
  // The guest's accepted ends close as the mux tears the bridges down.
  await eventually(() => openFds() <= before + 2, 10_000, `fd count back near ${before} (now ${openFds()})`);
});
