/**
 * What one wake-up through Deno's FFI costs: the round trip of a
 * `nonblocking` FFI call (here a trivial `getpid`) — a hand-off to Deno's
 * blocking pool and back. The library pays one whenever a read or write
 * finds `EAGAIN` and parks on the reactor (its `epoll_wait` is such a call),
 * while Deno's own sockets wait on the main thread's event loop, which FFI
 * code cannot join. Prints microseconds per round trip, median of 5 batches.
 * Run: `deno run --allow-ffi bench/deno_hop.ts`.
 */
import { LIBC_PATH } from "../ffi/symbols.ts";

const lib = Deno.dlopen(LIBC_PATH, {
  getpid: { parameters: [], result: "i32", nonblocking: true },
});
const BATCH = 2000;
const batches: number[] = [];
for (let b = 0; b < 6; b++) {
  const t0 = performance.now();
  for (let i = 0; i < BATCH; i++) await lib.symbols.getpid();
  if (b > 0) batches.push(((performance.now() - t0) * 1000) / BATCH); // the first batch warms up
}
batches.sort((x, y) => x - y);
console.log(batches[2].toFixed(2));
lib.close();
