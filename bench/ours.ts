/**
 * This library as the benchmark client (vsock CID 1), on whichever runtime
 * runs it. `ours.ts --uds PATH MODE PORT ...` dials through a VMM's hybrid
 * vsock socket instead (bench/run.sh puts test/peers/vmm_mux.py there).
 */
import process from "node:process";
import { connect } from "../mod.ts";
import { main } from "./workloads.ts";

const uds = process.argv[2] === "--uds" ? process.argv.splice(2, 2)[1] : undefined;
const busyPoll = process.argv[2] === "--busy-poll" ? Number(process.argv.splice(2, 2)[1]) : undefined;
await main((port) => uds === undefined ? connect({ cid: 1, port, busyPoll }) : connect({ uds, port }));
