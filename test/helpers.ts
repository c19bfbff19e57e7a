/**
 * Shared test helpers: fd counting, time limits, and child processes that
 * work the same under `bun test`, `deno test` and `node --test`.
 */
import { readdirSync } from "node:fs";

/** A runtime this library runs on. */
export type Runtime = "bun" | "deno" | "node";

/** The runtime these tests run on. */
export const RUNTIME: Runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

/** Open fds of this process. */
export function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Rejects with `message` if `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/**
 * A full garbage collection on this runtime: `Bun.gc(true)` on Bun, the `gc()`
 * that `--expose-gc` (Node) or `--v8-flags=--expose-gc` (Deno) exposes, or
 * undefined when there is none.
 */
export function garbageCollector(): (() => void) | undefined {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) return () => bun.gc(true);
  return (globalThis as { gc?: () => void }).gc;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `condition()` holds, polling; fails after `ms`. */
export async function eventually(condition: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
