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
import process from "node:process";
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
    assert.equal(out.trim(), `0 ${sha256(new Uint8Array(0))}`);
    await fwd.waitErr(new RegExp(`#1 127\\.0\\.0\\.1:\\d+: target vsock:1:${dead}: .*(ECONNRESET|ECONNREFUSED)`));
    assert.equal(fwd.proc.exitCode, null);
    const refused = await runCli(argv, ["connect", `vsock:1:${dead}`]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, new RegExp(`^vsock connect: vsock:1:${dead}: .*(ECONNRESET|ECONNREFUSED)`));
    const busy = await runCli(argv, ["listen", `vsock:${echo.port}`]);
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
