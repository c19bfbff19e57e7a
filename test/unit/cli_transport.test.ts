/**
 * `vsock connect/forward --busy-poll`: the CLI's `dial` hands the window to
 * `connect()` for a vsock-family target. Through the in-process fake VMM
 * (hybrid vsock, no vsock needed): the VMM can only echo when the event loop
 * runs, so a read after a send that spins holds the loop for the whole window —
 * on Deno and Node, whose streams busy-poll; never on Bun, whose own loop
 * drives them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Duplex } from "node:stream";
import { adapter } from "../../ffi/mod.ts";
import { dial } from "../../cli/transport.ts";
import { FakeVmm } from "./fake_vmm.ts";

/** Writes `data`, then measures how long the event loop stood still while the echo was read. */
async function loopHeldWhileReading(stream: Duplex, data: string): Promise<{ held: number; echo: string }> {
  await new Promise<void>((resolve, reject) => stream.write(data, (error) => error ? reject(error) : resolve()));
  const t0 = performance.now();
  const held = new Promise<number>((resolve) => setTimeout(() => resolve(performance.now() - t0), 0));
  const echo = new Promise<string>((resolve) =>
    stream.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d)))
  );
  return { held: await held, echo: await echo };
}

for (const busyPoll of [undefined, 300_000]) {
  test(`cli dial: --busy-poll ${busyPoll ?? "absent"} reaches the connection (runtime ${adapter.runtime})`, async () => {
    const vmm = await FakeVmm.start();
    const stream = await dial({ kind: "hybrid", path: vmm.path, port: 52 }, { busyPoll });
    try {
      const { held, echo } = await loopHeldWhileReading(stream, "ping");
      assert.equal(echo, "ping");
      if (busyPoll !== undefined && adapter.runtime !== "bun") {
        assert.ok(held >= 280, `the read after the send spun ${held.toFixed(0)} ms of a 300 ms window`);
        assert.ok(held < 1_300, `held the loop ${held.toFixed(0)} ms`);
      } else {
        assert.ok(held < 150, `no window, yet the loop was held ${held.toFixed(0)} ms`);
      }
    } finally {
      stream.destroy();
      await vmm.close();
    }
  });
}
