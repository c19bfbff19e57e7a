/**
 * The single-file `vsock` executable (`npm run build:exe`, `bun build --compile`):
 * built from the local Bun into a temporary directory, then run with no
 * runtime around it: `--version`, `cid`, and a tcp -> tcp forward round trip.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pattern, sha256 } from "../e2e/data.ts";
import { BUN, ROOT } from "../e2e/procs.ts";
import { Cli, echo, portOf, roundTrip, runCli, tcpServer } from "../cli_procs.ts";
import { VERSION } from "../../cli/version.ts";
import { RUNTIME } from "../helpers.ts";

// The executable has Bun inside whatever runs the tests: built and run once, in Bun's run.
if (RUNTIME === "bun") {
  test("the compiled vsock executable: --version, cid, a forward round trip", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vsock-exe-"));
    try {
      const exe = join(dir, "vsock");
      execFileSync(BUN, ["build", "--compile", "cli.ts", "--outfile", exe], { cwd: ROOT, stdio: "pipe" });
      assert.deepEqual(await runCli([exe], ["--version"]), { code: 0, out: `vsock ${VERSION}\n`, err: "" });
      const cid = await runCli([exe], ["cid"]);
      if (cid.code === 0) assert.match(cid.out, /^\d+\n$/);
      else assert.deepEqual([cid.code, /^vsock cid: this machine has no vsock CID: .+/.test(cid.err)], [1, true]);
      assert.equal((await runCli([exe], ["forward"])).code, 2);

      await using server = await tcpServer(echo);
      const port = (server.address() as { port: number }).port;
      await using fwd = new Cli([exe], ["forward", "tcp:127.0.0.1:0", `tcp:127.0.0.1:${port}`]);
      const from = portOf(await fwd.listening());
      const data = pattern(1 << 20);
      assert.equal(sha256(await roundTrip(from, data)), sha256(data));
      fwd.kill("SIGTERM");
      assert.equal(await fwd.code(), 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
