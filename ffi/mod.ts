/**
 * Picks the adapter for the runtime we are on. This is the only place that
 * asks; everything else receives the {@link Adapter}.
 *
 * @module
 */
import type { Adapter } from "./types.ts";

export type { Adapter, EpollWaiter, ErrorFactory, Libc, StreamIO } from "./types.ts";
export { SYMBOLS } from "./symbols.ts";

async function load(): Promise<Adapter> {
  if ("Bun" in globalThis) {
    // A dynamic import: Deno must never see the "bun:ffi" import inside.
    const { createBunAdapter } = await import("./bun.ts");
    return createBunAdapter();
  }
  if ("Deno" in globalThis) {
    const { createDenoAdapter } = await import("./deno.ts");
    return createDenoAdapter();
  }
  throw new Error("vsock: this library runs on Bun or Deno (it needs their FFI); Node.js has none");
}

/** The adapter for the current runtime, opened once at module load. */
export const adapter: Adapter = await load();
