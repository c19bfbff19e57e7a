import { defineConfig } from "tsup";

// The npm build: ESM bundles for Bun consumers, one per entry point (the core,
// and ./http, which the core never loads; srvx stays a dependency). The per-runtime adapters
// stay separate chunks behind their dynamic imports, and "bun:ffi" is left to
// Bun. Declarations come from tsc (see tsconfig.json).
// The `vsock` command (package.json "bin") is a third entry; its shebang is
// added in a separate build so the library bundles carry none.
const common = {
  format: ["esm" as const],
  target: "esnext",
  platform: "neutral" as const,
  splitting: true,
  dts: false,
  external: ["bun:ffi", "node:ffi"],
};

export default defineConfig([
  { ...common, entry: ["mod.ts", "http.ts"], clean: true },
  { ...common, entry: ["cli.ts"], banner: { js: "#!/usr/bin/env bun" } },
]);
