/**
 * Picks the adapter for the runtime we are on. This is the only place that
 * asks; everything else receives the {@link Adapter}.
 *
 * @module
 */
import type { Adapter } from "./types.ts";

export type { Adapter, ConnectingStreamIO, EpollWaiter, ErrorFactory, Libc, StreamIO } from "./types.ts";
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
  if (typeof globalThis.process?.versions?.node === "string") {
    // Checked last: Bun and Deno both present a Node-like `process` too.
    const { createNodeAdapter } = await import("./node.ts");
    return createNodeAdapter();
  }
  throw new Error("vsock: this library runs on Bun, Deno or Node.js 26.1+ (it needs their FFI)");
}

/** The adapter for the current runtime, opened once at module load. */
export const adapter: Adapter = await load();
