/** Child processes for the interop tests (node:child_process works under Bun, Deno and Node alike). */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { RUNTIME, type Runtime } from "../helpers.ts";

const root = new URL("../../", import.meta.url).pathname;
/** The project root, for peers' paths. */
export const ROOT: string = root;
/**
 * The runtimes, from the project's pinned npm packages. Deno's `.bin` entry is
 * a Node shim that passes on only stdio, so peers run the real binary beside
 * it (inherited fds such as systemd's fd 3 must reach Deno itself).
 */
export const BUN: string = `${root}node_modules/.bin/bun`;
export const DENO: string = existsSync(`${root}node_modules/deno/deno`)
  ? `${root}node_modules/deno/deno`
  : `${root}node_modules/.bin/deno`;

/** Node.js, from the pinned npm package `node`. */
export const NODE: string = `${root}node_modules/.bin/node`;

/**
 * The flags every Node process of the suite runs with. The node:ffi
 * ExperimentalWarning is silenced, as a user who has read it would.
 * `--liftoff-only`: Node 26.10 strips TypeScript types with a WebAssembly
 * build of swc, and in the TCG test guest a WebAssembly tier-up (Liftoff to
 * TurboFan) kills about one Node start in ten (SIGSEGV or a V8 fatal error in
 * `Runtime_WasmTriggerTierUp`), with no FFI involved: a plain 60-file `.ts`
 * program crashed 5 of 75 runs; all measured Node starts, 21 of 205 without
 * the flag and 0 of 100 with it. See README, "Tests".
 */
export const NODE_ARGS: readonly string[] = ["--disable-warning=ExperimentalWarning", "--liftoff-only"];

/** The runtimes other than the one running the tests: the cross-runtime peers. */
export const OTHERS: readonly Runtime[] = (["bun", "deno", "node"] as const).filter((r) => r !== RUNTIME);

/** The command line that runs a script of ours on `runtime` (Node with {@link NODE_ARGS}). */
export function runOn(runtime: Runtime, script: string, ...args: string[]): [string, string[]] {
  switch (runtime) {
    case "bun":
      return [BUN, [script, ...args]];
    case "deno":
      return [DENO, ["run", "--allow-ffi", "--allow-read", "--allow-env", script, ...args]];
    case "node":
      return [NODE, [...NODE_ARGS, script, ...args]];
  }
}

/** A running peer process with line-wise access to its stdout. */
export class Peer {
  readonly proc: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<number | null>;
  #listeners: (() => void)[] = [];

  constructor(command: string, args: string[], input?: Uint8Array) {
    this.proc = spawn(command, args, {
      cwd: root,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    this.proc.stdout!.on("data", (d: Uint8Array) => {
      this.stdout += new TextDecoder().decode(d);
      for (const l of this.#listeners.splice(0)) l();
    });
    this.proc.stderr!.on("data", (d: Uint8Array) => (this.stderr += new TextDecoder().decode(d)));
    this.exited = new Promise((resolve) =>
      this.proc.on("close", (code) => {
        for (const l of this.#listeners.splice(0)) l();
        resolve(code);
      })
    );
    if (input) this.proc.stdin!.end(input);
    else this.proc.stdin!.end();
  }

  /** Waits for stdout to match `re`; fails after `ms` or if the process exits first. */
  async match(re: RegExp, ms = 30_000): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = this.stdout.match(re);
      if (m) return m;
      if (this.proc.exitCode !== null || Date.now() > end) {
        throw new Error(
          `peer ${this.proc.spawnargs.join(" ")} never printed ${re}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.#listeners.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  /** Waits for exit; returns stdout; fails on a non-zero exit. */
  async done(ms = 60_000): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const code = await Promise.race([
      this.exited,
      new Promise<never>((
        _,
        reject,
      ) => (timer = setTimeout(() => reject(new Error(`peer timed out: ${this.stderr}`)), ms))),
    ]).finally(() => clearTimeout(timer));
    if (code !== 0) {
      throw new Error(
        `peer ${this.proc.spawnargs.join(" ")} exited ${code}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`,
      );
    }
    return this.stdout;
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
  }
}

/** A free vsock port for a peer that needs one named (socat). */
export async function freePort(): Promise<number> {
  const { listen } = await import("../../mod.ts");
  const l = listen();
  const port = l.addr.port;
  l.close();
  return port;
}
