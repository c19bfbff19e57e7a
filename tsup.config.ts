import { defineConfig } from "tsup";

// The npm build: ESM bundles for Bun and Node consumers, one per entry point
// (the core, and ./http, which the core never loads; srvx stays a dependency).
// The per-runtime adapters stay separate chunks behind their dynamic imports;
// "bun:ffi" is left to Bun, "node:ffi" to Node. Declarations come from tsc
// (see tsconfig.json).
export default defineConfig({
  entry: ["mod.ts", "http.ts"],
  format: ["esm"],
  target: "esnext",
  platform: "neutral",
  splitting: true,
  clean: true,
  dts: false,
  external: ["bun:ffi", "node:ffi"],
});
