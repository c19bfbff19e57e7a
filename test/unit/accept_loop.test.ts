/**
 * A listener's `for await` loop rides out fd exhaustion: `accept()` reports
 * EMFILE, the loop waits and serves again once fds are free. Runs a hybrid
 * vsock listener (a Unix socket: no vsock needed) in a child process under
 * `ulimit -n 96`, on the runtime running the tests. (test/e2e/faults.test.ts
 * does the same for AF_VSOCK listeners.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { RUNTIME } from "../helpers.ts";
import { BUN, DENO, NODE, NODE_ARGS, Peer, ROOT } from "../e2e/procs.ts";

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

test(`a hybrid listener's for await loop on ${RUNTIME} serves again after EMFILE`, async () => {
  const script = `${ROOT}test/peers/hybrid_emfile_child.ts`;
  const words = RUNTIME === "bun"
    ? [BUN, script]
    : RUNTIME === "deno"
    ? [DENO, "run", "--allow-all", script]
    : [NODE, ...NODE_ARGS, script];
  const child = new Peer("sh", ["-c", `ulimit -n 96 && exec ${words.map(q).join(" ")}`]);
  try {
    const out = await child.done(60_000).catch((e) => assert.fail(`${e}\nsignal: ${child.proc.signalCode}`));
    assert.match(out, /accept EMFILE\naccept loop served 2 after fds freed\nok\n/);
  } finally {
    child.kill();
  }
});
