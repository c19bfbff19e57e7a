/**
 * "What users pick instead": the runtime's own TCP over loopback —
 * Deno.connect on Deno, Bun.connect on Bun (wrapped into the Conn shape with
 * the same pull/backpressure logic the library uses for Bun).
 */
/// <reference types="bun-types" />
import { main } from "./workloads.ts";
import type { Conn } from "./workloads.ts";

async function dialBun(port: number): Promise<Conn> {
  const chunks: Uint8Array[] = [];
  let eof = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    allowHalfOpen: true,
    socket: {
      binaryType: "uint8array",
      data: (_s, d: Uint8Array) => (chunks.push(d), notify()),
      drain: notify,
      end: () => ((eof = true), notify()),
      close: () => ((eof = true), notify()),
    },
  });
  const park = () => new Promise<void>((resolve) => (wake = resolve));
  return {
    async read(p) {
      while (chunks.length === 0) {
        if (eof) return null;
        await park();
      }
      let n = 0;
      while (n < p.length && chunks.length > 0) {
        const head = chunks[0];
        const take = Math.min(head.length, p.length - n);
        p.set(head.subarray(0, take), n);
        n += take;
        if (take === head.length) chunks.shift();
        else chunks[0] = head.subarray(take);
      }
      return n;
    },
    async write(p) {
      for (;;) {
        const n = socket.write(p);
        if (n > 0) return n;
        await park();
      }
    },
    closeWrite: () => Promise.resolve(socket.shutdown()),
    close: () => socket.terminate(),
  };
}

await main("Bun" in globalThis ? dialBun : (port) => Deno.connect({ hostname: "127.0.0.1", port }));
