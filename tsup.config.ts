import { defineConfig } from "tsup";

// The npm build: one ESM bundle for Bun and Node consumers. The per-runtime
// adapters stay separate chunks behind their dynamic imports, and "bun:ffi" is
// left to Bun, "node:ffi" to Node. Declarations come from tsc (see tsconfig.json).
export default defineConfig({
  entry: ["mod.ts"],
  format: ["esm"],
  target: "esnext",
  platform: "neutral",
  splitting: true,
  clean: true,
  dts: false,
  external: ["bun:ffi", "node:ffi"],
});
