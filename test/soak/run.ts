/**
 * The soak: Bun, Deno and Node workers (test/soak/worker.ts) serve and load
 * each other at once over real AF_VSOCK CID 1, together with a python3 echo
 * server (stream and seqpacket) and a socat echo server. After a warm-up
 * phase every worker is measured at rest (RSS after a forced GC, open fds,
 * reactor registrations); then the main load runs for SOAK_SECONDS, and the
 * workers are measured at rest again. It fails on any checksum mismatch,
 * client error or unhandled rejection, on more fds or registrations than at
 * the first rest, or on RSS growth beyond SOAK_RSS_MB (default 64). Prints the
 * sampled curves as a table.
 *
 *   node test/soak/run.ts        (test/soak.sh runs it, in the test VM if needed)
 *
 * Env: SOAK_SECONDS (default 60), SOAK_WARMUP_SECONDS (default 10),
 * SOAK_SAMPLE_MS (default 5000), SOAK_RSS_MB (default 64).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";
import { listen } from "../../mod.ts";
import { NODE_ARGS } from "../e2e/procs.ts";
import type { Targets } from "./worker.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const WARMUP = Number(process.env.SOAK_WARMUP_SECONDS ?? 10);
const RSS_BOUND_MB = Number(process.env.SOAK_RSS_MB ?? 64);
const RUNTIMES = ["bun", "deno", "node"] as const;
type Runtime = typeof RUNTIMES[number];

const bin = (name: string): string => `${ROOT}node_modules/.bin/${name}`;
const COMMANDS: Record<Runtime, string[]> = {
  bun: [bin("bun"), `${ROOT}test/soak/worker.ts`],
  deno: [`${ROOT}node_modules/deno/deno`, "run", "--allow-all", "--v8-flags=--expose-gc", `${ROOT}test/soak/worker.ts`],
  node: [bin("node"), ...NODE_ARGS, "--expose-gc", `${ROOT}test/soak/worker.ts`],
};

type Sample = Record<string, number>;

/** A worker process and what it has printed. */
class Worker {
  readonly proc: ChildProcess;
  readonly samples: { t: number; sample: Sample }[] = [];
  readonly problems: string[] = [];
  stderr = "";
  #waiters: { kind: string; resolve: (value: string) => void }[] = [];
  readonly exited: Promise<number | null>;

  readonly name: string;
  readonly started: number;

  constructor(name: string, command: string[], started: number) {
    this.name = name;
    this.started = started;
    this.proc = spawn(command[0], command.slice(1), { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    this.proc.stderr!.on("data", (d: Uint8Array) => (this.stderr += new TextDecoder().decode(d)));
    createInterface({ input: this.proc.stdout! }).on("line", (line) => this.#line(line));
    this.exited = new Promise((resolve) => this.proc.on("close", (code) => resolve(code)));
  }

  #line(line: string): void {
    const space = line.indexOf(" ");
    const kind = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? "" : line.slice(space + 1);
    if (kind === "sample") this.samples.push({ t: (Date.now() - this.started) / 1000, sample: JSON.parse(rest) });
    else if (kind === "problem") this.problems.push(JSON.parse(rest).what);
    const i = this.#waiters.findIndex((w) => w.kind === kind);
    if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(rest);
  }

  /** The payload of the next line starting with `kind`. */
  next(kind: string, ms: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: no "${kind}" within ${ms} ms\n${this.stderr}`)),
        ms,
      );
      this.#waiters.push({ kind, resolve: (v) => (clearTimeout(timer), resolve(v)) });
      this.proc.once("close", () => reject(new Error(`${this.name} exited before "${kind}":\n${this.stderr}`)));
    });
  }

  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }
}

function python(): string {
  return execFileSync("python3", ["-c", "import sys; print(sys.executable)"]).toString().trim();
}

/** Waits for a `ready PORT` line from a python peer. */
function readyPort(proc: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout! });
    lines.on("line", (line) => {
      const m = line.match(/^ready (\d+)/);
      if (m) resolve(Number(m[1]));
    });
    proc.once("close", () => reject(new Error("a python peer exited early")));
  });
}

const started = Date.now();
const py = python();
const pyStream = spawn(py, [`${ROOT}test/peers/py_peer.py`, "echo-server"], { stdio: ["ignore", "pipe", "inherit"] });
const pySeq = spawn(py, [`${ROOT}test/peers/py_peer.py`, "seq-echo-server"], { stdio: ["ignore", "pipe", "inherit"] });
const probe = listen();
const socatPort = probe.addr.port;
probe.close();
const socat = spawn("socat", ["-t", "30", `VSOCK-LISTEN:${socatPort},reuseaddr,fork`, "EXEC:cat"], {
  stdio: ["ignore", "ignore", "inherit"],
});
const workers = RUNTIMES.map((r) => new Worker(r, COMMANDS[r], started));
const others = [pyStream, pySeq, socat];

let failed = false;
const fail = (why: string): void => {
  failed = true;
  console.log(`FAIL ${why}`);
};

try {
  const ports = await Promise.all(workers.map(async (w) => JSON.parse(await w.next("ready", 120_000))));
  const [pyStreamPort, pySeqPort] = await Promise.all([readyPort(pyStream), readyPort(pySeq)]);
  const targets: Targets = {
    stream: [
      ...workers.map((w, i) => ({ name: w.name, port: ports[i].stream as number, churn: true })),
      { name: "python", port: pyStreamPort, churn: true },
      // socat forks a cat per connection: no churn against it, only streams.
      { name: "socat", port: socatPort, churn: false },
    ],
    seqpacket: [
      ...workers.map((w, i) => ({ name: w.name, port: ports[i].seqpacket as number })),
      { name: "python", port: pySeqPort },
    ],
    http: workers.map((w, i) => ({ name: w.name, port: ports[i].http as number })),
  };
  for (const w of workers) w.send(`targets ${JSON.stringify(targets)}`);

  const phase = async (seconds: number): Promise<Sample[]> => {
    for (const w of workers) w.send(`load ${seconds}`);
    await Promise.all(workers.map((w) => w.next("idle", (seconds + 120) * 1000)));
    for (const w of workers) w.send("measure");
    return await Promise.all(workers.map(async (w) => JSON.parse(await w.next("measure", 60_000)) as Sample));
  };
  console.log(`soak: warm-up ${WARMUP} s, then ${SECONDS} s of load on bun, deno, node + python3, socat`);
  const rest1 = await phase(WARMUP);
  const loadStart = (Date.now() - started) / 1000;
  const rest2 = await phase(SECONDS);

  // The curves: one row per sample time, each runtime's RSS (MiB) / fds / reactor registrations.
  const mb = (n: number): string => (n / 1024 / 1024).toFixed(0);
  console.log(`\n   t(s) | ${RUNTIMES.map((r) => `${r.padEnd(4)} rss MiB / fds / reg`.padEnd(26)).join(" | ")}`);
  const rows = Math.max(...workers.map((w) => w.samples.length));
  for (let i = 0; i < rows; i++) {
    const t = workers[0].samples[i]?.t ?? workers.find((w) => w.samples[i])!.samples[i].t;
    const cells = workers.map((w) => {
      const s = w.samples[i]?.sample;
      return (s ? `${mb(s.rss)} / ${s.fds} / ${s.registered}` : "").padEnd(26);
    });
    console.log(`${t.toFixed(0).padStart(7)} | ${cells.join(" | ")}${t < loadStart ? "   (warm-up)" : ""}`);
  }
  console.log("\nat rest    | after warm-up (rss / fds / reg)   | after the load              | operations");
  for (const [i, w] of workers.entries()) {
    const [a, b] = [rest1[i], rest2[i]];
    const ops = `churn ${b.churn}, ping-pong ${b.pingpong}, 1 MiB ${b.streams}, msgs ${b.messages}, http ${b.http}` +
      ` (${b.httpResets} keep-alive resets); heap ${mb(a.heapUsed)} -> ${mb(b.heapUsed)} MiB`;
    console.log(
      `${w.name.padEnd(10)} | ${mb(a.rss)} MiB / ${a.fds} / ${a.registered}`.padEnd(47) +
        `| ${mb(b.rss)} MiB / ${b.fds} / ${b.registered}`.padEnd(30) + `| ${ops}`,
    );
    if (b.fds > a.fds) fail(`${w.name}: open fds grew ${a.fds} -> ${b.fds}`);
    if (b.registered > a.registered) fail(`${w.name}: reactor registrations grew ${a.registered} -> ${b.registered}`);
    if (b.rss - a.rss > RSS_BOUND_MB * 1024 * 1024) {
      fail(`${w.name}: RSS grew ${mb(a.rss)} -> ${mb(b.rss)} MiB, more than ${RSS_BOUND_MB} MiB`);
    }
    if (b.mismatches > 0) fail(`${w.name}: ${b.mismatches} checksum mismatches`);
    if (b.clientErrors > 0) fail(`${w.name}: ${b.clientErrors} client errors`);
    if (b.unhandled > 0) fail(`${w.name}: ${b.unhandled} unhandled rejections`);
    if (b.streams === 0 || b.messages === 0 || b.http === 0 || b.churn === 0 || b.pingpong === 0) {
      fail(`${w.name}: some kind of load never completed once`);
    }
    for (const p of w.problems.slice(0, 5)) console.log(`  ${w.name}: ${p}`);
  }
  for (const w of workers) w.send("exit");
  const codes = await Promise.all(workers.map((w) => w.exited));
  for (const [i, code] of codes.entries()) {
    if (code !== 0) fail(`${workers[i].name} exited ${code}: ${workers[i].stderr}`);
  }
} catch (error) {
  fail(String(error));
} finally {
  for (const w of workers) if (w.proc.exitCode === null) w.proc.kill("SIGKILL");
  for (const p of others) p.kill("SIGKILL");
}
console.log(failed ? "soak: FAILED" : `soak: passed (${SECONDS} s of load)`);
process.exit(failed ? 1 : 0);
