/** Baseline: Deno's own `--unstable-vsock` sockets (`deno run --unstable-vsock --allow-net`). */
import { main } from "./workloads.ts";

await main((port) => Deno.connect({ transport: "vsock", cid: 1, port }));
