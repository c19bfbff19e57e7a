/**
 * A Firecracker / Cloud Hypervisor host calling the guest agent of
 * examples/http_agent.ts over HTTP — through the VM's vsock Unix socket
 * (hybrid vsock), since on these VMMs the host side of a guest's vsock is a
 * Unix socket, not AF_VSOCK:
 *
 *   bun examples/firecracker_host.ts /run/vm1/v.sock 8080
 *   deno run --allow-ffi --allow-read --allow-env examples/firecracker_host.ts /run/vm1/v.sock 8080
 *   node --disable-warning=ExperimentalWarning examples/firecracker_host.ts /run/vm1/v.sock 8080
 *
 * The path is the VM's `vsock.uds_path` (Firecracker) or `socket=` (Cloud
 * Hypervisor); the port is the guest port the agent listens on. The agent may
 * still be booting: the handshake is retried a few times.
 */
import process from "node:process";
import { createHttpClient } from "../http.ts";

const [uds, port] = [process.argv[2], Number(process.argv[3])];
if (!uds || !Number.isInteger(port)) {
  console.error("usage: firecracker_host.ts VSOCK_UDS_PATH GUEST_PORT");
  process.exit(2);
}

// Each pooled connection is one `CONNECT <port>` handshake with the VMM.
using agent = createHttpClient({ uds, port, handshakeTimeout: 1000, retries: 5 });
console.log("health:", await (await agent.fetch("/health", { timeout: 10_000 })).json());
const info = await (await agent.fetch("/v1/info")).json() as { hostname: string; caller: number };
console.log(`guest ${info.hostname}, the agent saw the call come from CID ${info.caller}`);
const exec = await agent.fetch("/v1/exec", { method: "POST", body: JSON.stringify({ argv: ["uname", "-r"] }) });
const { code, stdout } = await exec.json() as { code: number; stdout: string };
console.log(`exec uname -r: exit ${code}, ${stdout.trim()}`);
