/**
 * The `vsock` command: dispatch, usage and exit codes (0 done, 1 failed, 2 bad arguments).
 *
 * @module
 */
import process from "node:process";
import { cid } from "./commands/cid.ts";
import { connect } from "./commands/connect.ts";
import { forward } from "./commands/forward.ts";
import { listen } from "./commands/listen.ts";
import { ping } from "./commands/ping.ts";
import type { Command } from "./command.ts";
import { UsageError } from "./usage_error.ts";
import { VERSION } from "./version.ts";

const COMMANDS: Command[] = [cid, connect, listen, forward, ping];

const USAGE = `Usage: vsock COMMAND [ARGS] [options]

netcat and socat for AF_VSOCK, and a port forwarder.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(9)} ${c.summary}`).join("\n")}

Endpoints: vsock:CID:PORT (CID a number, local, host, any), vsock:PORT (any CID),
tcp:HOST:PORT, tcp:PORT (127.0.0.1), unix:PATH, and hybrid vsock unix:///PATH?port=N
(a Firecracker / Cloud Hypervisor VMM socket: dial the guest's port N, or listen
on PATH_N for guests dialing host port N)

Options: -h, --help (also after a command), --version
Exit codes: 0 done, 1 failed (the reason on stderr), 2 bad arguments.`;

function wantsHelp(args: string[]): boolean {
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === "-h" || a === "--help");
}

/** Runs the command line `args` (without the runtime and script); resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  if (name === "--version" || name === "-V") {
    process.stdout.write(`vsock ${VERSION}\n`);
    return 0;
  }
  if (name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`vsock: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  if (wantsHelp(rest)) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`vsock ${command.name}: ${error.message}\n\n${command.usage}\n`);
    return 2;
  }
}
