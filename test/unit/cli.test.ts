/**
 * The `vsock` command on the host, spawned on the runtime running the tests: usage and exit
 * codes, and `forward` between tcp: and unix: endpoints (no vsock needed) to
 * prove splicing, half-close, big and many transfers, --max-conns, the SIGTERM
 * drain and the log lines. The vsock side is in test/e2e/cli.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect as tcpConnect, type Socket } from "node:net";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { concat, pattern, sha256 } from "../e2e/data.ts";
import { Cli, echo, HERE, portOf, roundTrip, runCli, tcpServer } from "../cli_procs.ts";
import { VERSION } from "../../cli/version.ts";
import { FakeVmm } from "./fake_vmm.ts";

{
  const { name, argv } = HERE;
  test(`cli on ${name}: usage errors exit 2 with usage on stderr; --help and --version exit 0`, async () => {
    const cases: [string[], RegExp][] = [
      [[], /Usage: vsock COMMAND/],
      [["frobnicate"], /unknown command "frobnicate"/],
      [["forward", "tcp:1"], /vsock forward: missing TO\n\nUsage: vsock forward FROM TO/],
      [["forward", "tcp:1", "bogus:2"], /bad endpoint "bogus:2"/],
      [["forward", "tcp:1", "tcp:2", "tcp:3"], /unexpected argument "tcp:3"/],
      [["forward", "tcp:1", "tcp:2", "--max-conns", "0"], /--max-conns must be an integer >= 1, got "0"/],
      [["forward", "tcp:1", "tcp:2", "--allow-cid", "3"], /--allow-cid needs a vsock: FROM endpoint/],
      [["forward", "tcp:1", "tcp:2", "--bogus"], /Unknown option '--bogus'/],
      [["forward", "tcp:1", "tcp:2", "--busy-poll", "500"], /--busy-poll applies to a vsock: or hybrid .* not tcp:/],
      [["forward", "tcp:1", "vsock:1:2", "--busy-poll", "2000000"], /--busy-poll must be at most 1000000/],
      [["connect", "vsock:1:2", "--busy-poll=1.5"], /--busy-poll must be an integer >= 0, got "1.5"/],
      [["connect"], /missing ADDR/],
      [["connect", "vsock:x:1"], /invalid vsock CID "x"/],
      [["listen", "tcp:1", "--keep=3"], /Usage: vsock listen/],
      [["ping", "tcp:1", "-c", "x"], /-c\/--count must be an integer >= 1/],
      [["cid", "extra"], /unexpected argument "extra"/],
    ];
    for (const [args, message] of cases) {
      const { code, out, err } = await runCli(argv, args);
      assert.equal(code, 2, `${args.join(" ")}: ${err}`);
      assert.match(err, message, args.join(" "));
      assert.equal(out, "", args.join(" "));
    }
    for (const command of ["cid", "connect", "listen", "forward", "ping"]) {
      const { code, out } = await runCli(argv, [command, "--help"]);
      assert.equal(code, 0);
      assert.match(out, new RegExp(`^Usage: vsock ${command}`));
    }
    assert.deepEqual(await runCli(argv, ["--version"]), { code: 0, out: `vsock ${VERSION}\n`, err: "" });
    const help = await runCli(argv, ["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /forward +accept on FROM/);
  });

  test(`cli on ${name}: forward tcp->tcp: 1 MiB checksummed, half-close both ways, verbose line, SIGTERM exits 0`, async () => {
    // The server answers only after the client's EOF: that EOF must cross the forwarder as a half-close.
    await using server = await tcpServer((socket: Socket) => {
      const chunks: Uint8Array[] = [];
      socket.on("data", (d: Uint8Array) => chunks.push(new Uint8Array(d)));
      socket.on("end", () => socket.end(`${sha256(concat(chunks))}\n`));
    });
    const port = (server.address() as { port: number }).port;
    await using fwd = new Cli(argv, ["forward", "-v", "tcp:127.0.0.1:0", `tcp:127.0.0.1:${port}`]);
    const from = portOf(await fwd.listening());
    const data = pattern(1 << 20);
    const reply = new TextDecoder().decode(await roundTrip(from, data));
    assert.equal(reply, `${sha256(data)}\n`);
    await fwd.waitErr(/#1 127\.0\.0\.1:\d+ -> tcp:127\.0\.0\.1:\d+: 1048576 bytes up, 65 bytes down, \d+ ms, closed\n/);
    fwd.kill("SIGTERM");
    assert.equal(await fwd.code(), 0);
  });

  test(`cli on ${name}: forward: 100 concurrent connections, unix: on both sides`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "vsock-cli-"));
    try {
      await using server = await tcpServer(echo);
      const port = (server.address() as { port: number }).port;
      await using hop = new Cli(argv, ["forward", `unix:${dir}/a.sock`, `tcp:127.0.0.1:${port}`]);
      assert.equal(await hop.listening(), `unix:${dir}/a.sock`);
      await using fwd = new Cli(argv, ["forward", "tcp:127.0.0.1:0", `unix:${dir}/a.sock`]);
      const from = portOf(await fwd.listening());
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => roundTrip(from, pattern(10_000 + i))),
      );
      results.forEach((got, i) => assert.equal(sha256(got), sha256(pattern(10_000 + i)), `connection ${i}`));
      const direct = await roundTrip(`${dir}/a.sock`, pattern(1000));
      assert.equal(sha256(direct), sha256(pattern(1000)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`cli on ${name}: hybrid vsock endpoints: dial a guest port through a fake VMM; listen on PATH_PORT`, async () => {
    const vmm = await FakeVmm.start();
    try {
      // Host -> guest: tcp in front of unix:///...?port=52; the fake VMM answers CONNECT 52 and echoes.
      // --busy-poll is accepted for a hybrid target (its effect is in cli_transport.test.ts).
      await using fwd = new Cli(argv, [
        "forward",
        "-v",
        "--busy-poll",
        "200",
        "tcp:127.0.0.1:0",
        `unix://${vmm.path}?port=52`,
      ]);
      const from = portOf(await fwd.listening());
      const data = pattern(300_000);
      assert.equal(sha256(await roundTrip(from, data)), sha256(data));
      assert.deepEqual(vmm.requests, ["CONNECT 52"]);
      assert.equal(vmm.sawEnd, true, "the client's EOF crossed as a half-close");
      await fwd.waitErr(/-> unix:\/\/\/.*v\.sock\?port=52: 300000 bytes up, 300000 bytes down/);

      // Guest -> host: the VMM connects to PATH_700 when a guest dials host port 700 (no handshake on this side).
      await using server = await tcpServer(echo);
      const port = (server.address() as { port: number }).port;
      await using hop = new Cli(argv, ["forward", `unix://${vmm.path}?port=700`, `tcp:127.0.0.1:${port}`]);
      assert.match(await hop.listening(), /^unix:\/\/\/.*v\.sock\?port=700$/);
      const back = await roundTrip(`${vmm.path}_700`, pattern(5000));
      assert.equal(sha256(back), sha256(pattern(5000)));
      hop.kill("SIGTERM");
      assert.equal(await hop.code(), 0);
      assert.equal(existsSync(`${vmm.path}_700`), false, "the listener's socket file is removed at exit");
    } finally {
      await vmm.close();
    }
  });

  test(`cli on ${name}: forward --max-conns refuses beyond N; a refusing target closes only that client`, async () => {
    await using server = await tcpServer(echo);
    const port = (server.address() as { port: number }).port;
    await using fwd = new Cli(argv, ["forward", "--max-conns", "2", "tcp:127.0.0.1:0", `tcp:127.0.0.1:${port}`]);
    const from = portOf(await fwd.listening());
    const held: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const s = tcpConnect({ port: from, host: "127.0.0.1" });
      await new Promise<void>((resolve) => s.once("data", () => resolve()).write("x"));
      held.push(s);
    }
    const third = await roundTrip(from, pattern(100)).catch(() => new Uint8Array(0));
    assert.equal(third.byteLength, 0);
    await fwd.waitErr(/#3 127\.0\.0\.1:\d+: refused: --max-conns 2 connections open/);
    held[0].destroy();
    // A slot frees up once the forwarder sees the close.
    let again: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 50 && again.byteLength === 0; i++) {
      again = await roundTrip(from, pattern(100)).catch(() => new Uint8Array(0));
      if (again.byteLength === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(sha256(again), sha256(pattern(100)));
    held[1].destroy();

    // A target nobody listens on: the client is closed, the forwarder logs it and keeps serving.
    const closed = await tcpServer(echo);
    const deadPort = (closed.address() as { port: number }).port;
    await closed[Symbol.asyncDispose]();
    await using dead = new Cli(argv, ["forward", "tcp:127.0.0.1:0", `tcp:127.0.0.1:${deadPort}`]);
    const deadFrom = portOf(await dead.listening());
    for (let i = 1; i <= 2; i++) {
      const got = await roundTrip(deadFrom, pattern(10)).catch(() => new Uint8Array(0));
      assert.equal(got.byteLength, 0);
      await dead.waitErr(
        new RegExp(`#${i} 127\\.0\\.0\\.1:\\d+: target tcp:127\\.0\\.0\\.1:${deadPort}: .*ECONNREFUSED`),
      );
    }
    assert.equal(dead.proc.exitCode, null);
  });

  test(`cli on ${name}: SIGTERM drains: stops accepting, the transfer in flight completes, exit 0`, async () => {
    // The server sends 2 MiB slowly, so SIGTERM lands mid-transfer.
    const data = pattern(2 << 20);
    await using server = await tcpServer((socket: Socket) => {
      socket.on("error", () => {});
      let at = 0;
      const tick = setInterval(() => {
        socket.write(data.subarray(at, at + 128 * 1024));
        at += 128 * 1024;
        if (at >= data.byteLength) {
          clearInterval(tick);
          socket.end();
        }
      }, 60);
      socket.on("close", () => clearInterval(tick));
      socket.resume();
    });
    const port = (server.address() as { port: number }).port;
    await using fwd = new Cli(argv, ["forward", "-v", "tcp:127.0.0.1:0", `tcp:127.0.0.1:${port}`]);
    const from = portOf(await fwd.listening());
    const received: Uint8Array[] = [];
    const client = tcpConnect({ port: from, host: "127.0.0.1", allowHalfOpen: true });
    const ended = new Promise<void>((resolve) => client.on("end", () => (client.end(), resolve())));
    client.on("data", (d: Uint8Array) => received.push(new Uint8Array(d)));
    await new Promise<void>((resolve) => client.once("data", () => resolve()));
    fwd.kill("SIGTERM");
    await fwd.waitErr(/SIGTERM: stopped accepting; waiting for 1 open connection/);
    const refused = await roundTrip(from, pattern(10)).then(() => "accepted", (e: { code?: string }) => e.code);
    assert.equal(refused, "ECONNREFUSED");
    await ended;
    assert.equal(sha256(concat(received)), sha256(data));
    assert.equal(await fwd.code(), 0);
    assert.match(fwd.stderr, /0 bytes up, 2097152 bytes down, \d+ ms, closed/);
  });

  test(`cli on ${name}: ping: time per try, loss, min/avg/max; exit 1 when nothing answers`, async () => {
    await using server = await tcpServer(echo);
    const port = (server.address() as { port: number }).port;
    const up = await runCli(argv, ["ping", "-c", "3", "-i", "0", `tcp:${port}`]);
    assert.equal(up.code, 0, up.err);
    const lines = up.out.trim().split("\n");
    for (let seq = 1; seq <= 3; seq++) {
      assert.match(
        lines[seq - 1],
        new RegExp(`^connected to tcp:127\\.0\\.0\\.1:${port}: seq=${seq} time=\\d+\\.\\d{3} ms$`),
      );
    }
    assert.match(lines[3], /: 3 tries, 3 connected, 0\.0% loss$/);
    assert.match(lines[4], /^min\/avg\/max = [\d.]+\/[\d.]+\/[\d.]+ ms$/);
    const closed = await tcpServer(echo);
    const deadPort = (closed.address() as { port: number }).port;
    await closed[Symbol.asyncDispose]();
    const down = await runCli(argv, ["ping", "-c", "2", "-i", "0", `tcp:${deadPort}`]);
    assert.equal(down.code, 1);
    assert.match(down.out, /seq=1 .*ECONNREFUSED/);
    assert.match(down.out, /2 tries, 0 connected, 100\.0% loss\n$/);
  });

  test(`cli on ${name}: --drain-timeout ends what is still open; connect and listen pipe stdin/stdout`, async () => {
    await using server = await tcpServer((socket: Socket) => {
      socket.resume(); // never answers, never closes first
      socket.on("end", () => socket.destroy());
    });
    const port = (server.address() as { port: number }).port;
    await using fwd = new Cli(argv, ["forward", "-v", "--drain-timeout", "300", "tcp:0", `tcp:${port}`]);
    const from = portOf(await fwd.listening());
    const client = tcpConnect({ port: from, host: "127.0.0.1" });
    client.on("error", () => {});
    await new Promise<void>((resolve) => client.once("connect", () => resolve()));
    await fwd.waitErr(/listening/);
    await new Promise((r) => setTimeout(r, 200));
    fwd.kill("SIGINT");
    assert.equal(await fwd.code(), 0);
    assert.match(fwd.stderr, /drain timeout: ending 1 open connection/);
    assert.match(fwd.stderr, /ended by --drain-timeout/);
    client.destroy();

    await using listener = new Cli(
      argv,
      ["listen", "-v", "tcp:127.0.0.1:0"],
      new TextEncoder().encode("from listen\n"),
    );
    const at = await listener.waitErr(/listening on (\S+)\n/);
    const data = pattern(300_000);
    const { code, out } = await runCli(argv, ["connect", at[1]], data);
    assert.equal(code, 0);
    assert.equal(out, "from listen\n");
    assert.equal(await listener.code(), 0);
    assert.equal(sha256(concat(listener.stdout)), sha256(data));
  });
}
