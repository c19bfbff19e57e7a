/**
 * Running the `vsock` command in tests, on each runtime: a spawned CLI with
 * its stdout/stderr collected, the bound address read from its "listening on"
 * line, and TCP echo/round-trip helpers (node:net) for the peers in-process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { connect as tcpConnect, createServer, type Server, type Socket } from "node:net";
import process from "node:process";
import { BUN, DENO, NODE, NODE_ARGS, ROOT } from "./e2e/procs.ts";
import { concat } from "./e2e/data.ts";
import { RUNTIME } from "./helpers.ts";

/** The command prefixes that run `cli.ts` on each runtime. */
export const RUNTIMES: { name: string; argv: string[] }[] = [
  { name: "bun", argv: [BUN, "cli.ts"] },
  { name: "deno", argv: [DENO, "run", "--allow-all", "cli.ts"] },
  { name: "node", argv: [NODE, ...NODE_ARGS, "cli.ts"] },
];

/**
 * The command on the runtime running the tests: each runtime's test run
 * proves the command on itself, so the three runs together cover all three.
 */
export const HERE: { name: string; argv: string[] } = RUNTIMES.find((r) => r.name === RUNTIME)!;

/** A running `vsock` command. */
export class Cli {
  readonly proc: ChildProcess;
  stdout: Uint8Array[] = [];
  stderr = "";
  readonly exited: Promise<number | null>;

  constructor(argv: string[], args: string[], input?: Uint8Array | "keep-open") {
    this.proc = spawn(argv[0], [...argv.slice(1), ...args], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    this.proc.stdout!.on("data", (d: Uint8Array) => this.stdout.push(new Uint8Array(d)));
    this.proc.stderr!.on("data", (d: Uint8Array) => (this.stderr += new TextDecoder().decode(d)));
    // The code comes from "exit", the output is complete at "close": wait for both. A death by
    // signal is noted on stderr so an assertion on the code says which signal it was.
    const exit = new Promise<number | null>((resolve) =>
      this.proc.once("exit", (code, signal) => {
        if (code === null) this.stderr += `\n[${argv[0]} exited by signal ${signal}]`;
        resolve(code);
      })
    );
    const close = new Promise<void>((resolve) => this.proc.once("close", () => resolve()));
    this.exited = Promise.all([exit, close]).then(([code]) => code);
    // A command that exits before reading all its input is the test's to judge, not a crash.
    this.proc.stdin!.on("error", () => {});
    if (input instanceof Uint8Array) this.proc.stdin!.end(input);
    else if (input !== "keep-open") this.proc.stdin!.end();
  }

  /** stdout so far, as text. */
  get out(): string {
    return new TextDecoder().decode(concat(this.stdout));
  }

  /** Waits until stderr matches `re` (fails after `ms` or on exit). */
  async waitErr(re: RegExp, ms = 20_000): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = this.stderr.match(re);
      if (m) return m;
      if (this.proc.exitCode !== null || Date.now() > end) {
        throw new Error(`${this.proc.spawnargs.join(" ")}: stderr never matched ${re}\nstderr: ${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The endpoint from a "listening on ENDPOINT" line on stderr (a slow VM may take long to start a runtime). */
  async listening(ms = 90_000): Promise<string> {
    return (await this.waitErr(/listening on (\S+?),?\s/, ms))[1];
  }

  /** The exit code, failing after `ms`. */
  async code(ms = 90_000): Promise<number | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) =>
      timer = setTimeout(() => reject(new Error(`${this.proc.spawnargs.join(" ")} did not exit: ${this.stderr}`)), ms)
    );
    return await Promise.race([this.exited, timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * Signals the command. Through `process.kill`, not `proc.kill`: Deno's
   * child_process reports a signal it sent itself as the exit cause even when
   * the child caught it and exited 0.
   */
  kill(signal: "SIGKILL" | "SIGTERM" | "SIGINT" = "SIGKILL"): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) process.kill(this.proc.pid!, signal);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.kill();
    await this.exited;
  }
}

/** Runs a command to its end: exit code, stdout, stderr. */
export async function runCli(
  argv: string[],
  args: string[],
  input?: Uint8Array,
): Promise<{ code: number | null; out: string; err: string }> {
  const cli = new Cli(argv, args, input);
  const code = await cli.code();
  return { code, out: cli.out, err: cli.stderr };
}

/** The port of a `tcp:HOST:PORT` endpoint. */
export function portOf(endpoint: string): number {
  return Number(endpoint.slice(endpoint.lastIndexOf(":") + 1));
}

/** A TCP server on 127.0.0.1 running `handler` per connection; half-open sockets. */
export async function tcpServer(handler: (socket: Socket) => void): Promise<Server & AsyncDisposable> {
  const server = createServer({ allowHalfOpen: true }, handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return Object.assign(server, {
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

/** An echo handler: sends back everything, and half-closes after the client's EOF. */
export function echo(socket: Socket): void {
  socket.on("error", () => {});
  socket.pipe(socket);
}

/**
 * Dials `port` (or a Unix `path`), sends `data`, half-closes and collects
 * everything until the server's EOF.
 */
export function roundTrip(to: number | string, data: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const socket = typeof to === "number"
      ? tcpConnect({ port: to, host: "127.0.0.1", allowHalfOpen: true })
      : tcpConnect({ path: to, allowHalfOpen: true });
    const chunks: Uint8Array[] = [];
    socket.on("data", (d: Uint8Array) => chunks.push(new Uint8Array(d)));
    socket.on("error", reject);
    socket.on("end", () => {
      socket.end();
      resolve(concat(chunks));
    });
    socket.end(data);
  });
}
