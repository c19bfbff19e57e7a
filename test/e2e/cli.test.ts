/**
 * The `vsock` command over real AF_VSOCK CID 1, with peers nobody here wrote:
 * socat (vsock echo server and client), python3 TCP echo server and clients.
 * The command runs on the runtime running this file (the suite runs once per
 * runtime). Host-side behaviour (usage, drain, --max-conns, unix:) is in
 * test/unit/cli.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AddressInfo, createServer } from "node:net";
import { concat, pattern, sha256 } from "./data.ts";
import { freePort, Peer } from "./procs.ts";
import { Cli, HERE, portOf, runCli } from "../cli_procs.ts";

const runtime = HERE;
const argv = runtime.argv;

/** A socat vsock echo server on a free port; resolves once it accepts. */
async function socatEcho(): Promise<{ port: number; peer: Peer }> {
  const port = await freePort();
  // -t 30: socat's default gives cat 0.5 s to finish after the client's EOF, too short in a slow VM.
  const peer = new Peer("socat", ["-t", "30", `VSOCK-LISTEN:${port},reuseaddr,fork`, "EXEC:cat"]);
  const { connect } = await import("../../mod.ts");
  for (let i = 0;; i++) {
    try {
      (await connect({ cid: 1, port })).close();
      return { port, peer };
    } catch (error) {
      if (i > 100) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test(`vsock cli (${runtime.name}): forward tcp -> vsock:1 in front of socat; python3 clients: 1 MiB, 10 at once`, async () => {
  const echo = await socatEcho();
  await using fwd = new Cli(argv, ["forward", "-v", "tcp:127.0.0.1:0", `vsock:1:${echo.port}`]);
  try {
    const from = portOf(await fwd.listening());
    const big = await new Peer("python3", ["test/peers/py_tcp.py", "clients", String(from), String(1 << 20), "1"])
      .done(120_000);
    assert.equal(big.trim(), `${1 << 20} ${sha256(pattern(1 << 20))}`);
    await fwd.waitErr(new RegExp(`-> vsock:1:${echo.port}: 1048576 bytes up, 1048576 bytes down, \\d+ ms, closed\n`));
    const many = await new Peer("python3", ["test/peers/py_tcp.py", "clients", String(from), "100000", "10"])
      .done(120_000);
    assert.deepEqual(many.trim().split("\n"), Array(10).fill(`100000 ${sha256(pattern(100000))}`));
  } finally {
    echo.peer.kill();
  }
});

test(`vsock cli (${runtime.name}): forward vsock -> tcp in front of python3, driven by a socat vsock client`, async () => {
  const py = new Peer("python3", ["test/peers/py_tcp.py", "echo-server"]);
  const dir = mkdtempSync(join(tmpdir(), "vsock-cli-"));
  try {
    const tcpPort = (await py.match(/ready (\d+)/, 90_000))[1];
    const port = await freePort();
    await using fwd = new Cli(argv, ["forward", "--allow-cid", "1", `vsock:${port}`, `tcp:127.0.0.1:${tcpPort}`]);
    assert.equal(await fwd.listening(), `vsock:any:${port}`);
    const data = pattern(1 << 20);
    writeFileSync(`${dir}/in`, data);
    await new Peer("sh", ["-c", `socat -t 30 - VSOCK-CONNECT:1:${port} < ${dir}/in > ${dir}/out`]).done();
    assert.equal(sha256(readFileSync(`${dir}/out`)), sha256(data));
  } finally {
    py.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`vsock cli (${runtime.name}): hybrid vsock through a Firecracker-like VMM muxer (vmm_mux.py), both directions`, async () => {
  const echo = await socatEcho();
  const py = new Peer("python3", ["test/peers/py_tcp.py", "echo-server"]);
  const dir = mkdtempSync(join(tmpdir(), "vsock-cli-"));
  // --shutdown ch: the muxer passes a half-close on (Cloud Hypervisor), so request/response works through it.
  const mux = new Peer("python3", [
    "test/peers/vmm_mux.py",
    `${dir}/v.sock`,
    "--shutdown",
    "ch",
    "--guest-port",
    "any",
  ]);
  try {
    await mux.match(/^ready$/m, 90_000);
    const guestPort = (await mux.match(/^guest-port (\d+)$/m))[1];
    // Host -> guest: a TCP client reaches the socat echo on the guest's port through the VMM socket.
    await using fwd = new Cli(argv, ["forward", "-v", "tcp:127.0.0.1:0", `unix://${dir}/v.sock?port=${echo.port}`]);
    const from = portOf(await fwd.listening());
    const out = await new Peer("python3", ["test/peers/py_tcp.py", "clients", String(from), String(1 << 20), "1"])
      .done(120_000);
    assert.equal(out.trim(), `${1 << 20} ${sha256(pattern(1 << 20))}`);
    await fwd.waitErr(new RegExp(`-> unix:///.*v\\.sock\\?port=${echo.port}: 1048576 bytes up, 1048576 bytes down`));

    // Guest -> host: a guest (socat) dials host port P; the VMM connects to v.sock_P, where the forwarder listens.
    const tcpPort = (await py.match(/ready (\d+)/, 90_000))[1];
    await using hop = new Cli(argv, ["forward", `unix://${dir}/v.sock?port=${guestPort}`, `tcp:127.0.0.1:${tcpPort}`]);
    await hop.listening();
    const data = pattern(300_000);
    writeFileSync(`${dir}/in`, data);
    await new Peer("sh", ["-c", `socat -t 30 - VSOCK-CONNECT:1:${guestPort} < ${dir}/in > ${dir}/out`]).done(120_000);
    assert.equal(sha256(readFileSync(`${dir}/out`)), sha256(data));
  } finally {
    mux.kill();
    py.kill();
    echo.peer.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`vsock cli (${runtime.name}): SIGTERM drains a vsock -> tcp transfer in flight to a socat client; nothing lost`, async () => {
  // The TCP target sends 2 MiB slowly, so SIGTERM lands mid-transfer.
  const data = pattern(2 << 20);
  let firstWrite!: () => void;
  const started = new Promise<void>((resolve) => (firstWrite = resolve));
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on("error", () => {});
    socket.resume();
    let at = 0;
    const tick = setInterval(() => {
      socket.write(data.subarray(at, at + 128 * 1024));
      at += 128 * 1024;
      firstWrite();
      if (at >= data.byteLength) {
        clearInterval(tick);
        socket.end();
      }
    }, 100);
    socket.on("close", () => clearInterval(tick));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const dir = mkdtempSync(join(tmpdir(), "vsock-cli-"));
  try {
    const port = await freePort();
    const target = `tcp:127.0.0.1:${(server.address() as AddressInfo).port}`;
    await using fwd = new Cli(argv, ["forward", "-v", `vsock:${port}`, target]);
    await fwd.listening();
    const socat = new Peer("sh", ["-c", `socat -t 30 -u VSOCK-CONNECT:1:${port} - > ${dir}/out`]);
    await started;
    fwd.kill("SIGTERM");
    await fwd.waitErr(/SIGTERM: stopped accepting; waiting for 1 open connection/);
    await socat.done(120_000);
    assert.equal(await fwd.code(), 0, fwd.stderr);
    assert.equal(sha256(readFileSync(`${dir}/out`)), sha256(data));
    assert.match(fwd.stderr, /0 bytes up, 2097152 bytes down, \d+ ms, closed/);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`vsock cli (${runtime.name}): connect and listen piped against socat; cid; error paths`, async () => {
  const echo = await socatEcho();
  try {
    const data = pattern(300_000);
    const client = new Cli(argv, ["connect", `vsock:local:${echo.port}`], data);
    assert.equal(await client.code(120_000), 0, client.stderr);
    assert.equal(sha256(concat(client.stdout)), sha256(data));

    // A target nobody listens on: that client is closed with a log line; the forwarder stays up.
    const dead = await freePort();
    await using fwd = new Cli(argv, ["forward", "tcp:127.0.0.1:0", `vsock:1:${dead}`]);
    const from = portOf(await fwd.listening());
    const out = await new Peer("python3", ["test/peers/py_tcp.py", "clients", String(from), "10", "1"]).done();
    // Closed without a byte: EOF, or a reset when the forwarder closed with the client's request unread.
    assert.match(out.trim(), new RegExp(`^(0 ${sha256(new Uint8Array(0))}|reset 0)$`));
    await fwd.waitErr(new RegExp(`#1 127\\.0\\.0\\.1:\\d+: target vsock:1:${dead}: .*(ECONNRESET|ECONNREFUSED)`));
    assert.equal(fwd.proc.exitCode, null);
    // Two short-lived CLI runs at once: each start is seconds in the emulated guest.
    const [refused, busy] = await Promise.all([
      runCli(argv, ["connect", `vsock:1:${dead}`]),
      runCli(argv, ["listen", `vsock:${echo.port}`]),
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, new RegExp(`^vsock connect: vsock:1:${dead}: .*(ECONNRESET|ECONNREFUSED)`));
    assert.equal(busy.code, 1);
    assert.match(busy.err, /EADDRINUSE/);
  } finally {
    echo.peer.kill();
  }

  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "vsock-cli-"));
  try {
    await using listener = new Cli(argv, ["listen", "-v", `vsock:${port}`], new TextEncoder().encode("from listen\n"));
    assert.equal(await listener.listening(), `vsock:any:${port}`);
    const data = pattern(200_000);
    writeFileSync(`${dir}/in`, data);
    const socat = await new Peer("sh", ["-c", `socat -t 30 - VSOCK-CONNECT:1:${port} < ${dir}/in`]).done();
    assert.equal(socat, "from listen\n");
    assert.equal(await listener.code(), 0, listener.stderr);
    assert.equal(sha256(concat(listener.stdout)), sha256(data));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const cid = await runCli(argv, ["cid"]);
  assert.deepEqual([cid.code, cid.err], [0, ""]);
  assert.match(cid.out, /^\d+\n$/);
});
