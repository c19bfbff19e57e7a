import { defineConfig } from "tsup";

// The npm build: ESM bundles for Bun and Node consumers, one per entry point
// (the core, and ./http, which the core never loads; srvx stays a dependency).
// The per-runtime adapters stay separate chunks behind their dynamic imports;
// "bun:ffi" is left to Bun, "node:ffi" to Node. Declarations come from tsc
// (see tsconfig.json).
// The `vsock` command is a third entry, dist/cli.js, started by the
// package.json "bin" launcher cli/vsock.sh (Bun if present, else Node).
export default defineConfig({
  entry: ["mod.ts", "http.ts", "cli.ts"],
  clean: true,
  format: ["esm"],
  target: "esnext",
  platform: "neutral",
  splitting: true,
  dts: false,
  external: ["bun:ffi", "node:ffi"],
});
