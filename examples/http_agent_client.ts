/**
 * A host control plane calling the guest agent of examples/http_agent.ts:
 *
 *   bun examples/http_agent_client.ts CID PORT
 *   deno run --allow-ffi --allow-env examples/http_agent_client.ts CID PORT
 *   node --disable-warning=ExperimentalWarning examples/http_agent_client.ts CID PORT
 *
 * CID is the guest's (the one given to the VM; 1 = this machine, to try it
 * out). Prints the agent's health and info, then runs `uname -r` in it.
 */
import process from "node:process";
import { createHttpClient } from "../http.ts";

const [cid, port] = process.argv.slice(2).map(Number);
if (!Number.isInteger(cid) || !Number.isInteger(port)) {
  console.error("usage: http_agent_client.ts CID PORT");
  process.exit(2);
}

// One keep-alive connection serves all three requests.
using agent = createHttpClient({ cid, port, timeout: 2000 });
const health = await agent.fetch("/health", { timeout: 5000 });
console.log("health:", await health.json());
console.log("info:", await (await agent.fetch("/v1/info")).json());
const exec = await agent.fetch("/v1/exec", { method: "POST", body: JSON.stringify({ argv: ["uname", "-r"] }) });
const { code, stdout } = await exec.json() as { code: number; stdout: string };
console.log(`exec uname -r: exit ${code}, ${stdout.trim()}`);
