/** This library as the benchmark client (vsock CID 1), on whichever runtime runs it. */
import { connect } from "../mod.ts";
import { main } from "./workloads.ts";

await main((port) => connect({ cid: 1, port }));
