/**
 * `vsock connect ADDR`: stdin/stdout ↔ one connection, like `nc`.
 *
 * @module
 */
import process from "node:process";
import { busyPollOption, type Command, errorText, expectPositionals, intOption, parseCommand } from "../command.ts";
import { formatEndpoint, parseEndpoint } from "../endpoint.ts";
import { endStdout, stdioSession } from "../stdio.ts";
import { dial } from "../transport.ts";

/** See the module comment. */
export const connect: Command = {
  name: "connect",
  summary: "stdin/stdout <-> one connection (like nc)",
  usage: `Usage: vsock connect ADDR [--timeout MS] [--busy-poll US]

Connects to ADDR and copies stdin to the connection and the connection to stdout.
stdin's end half-closes the connection (the peer reads EOF and can still answer);
the command exits 0 once both directions have ended (when stdin is a terminal: at
the peer's EOF) and stdout has everything.

ADDR: vsock:CID:PORT (CID a number, local, host), tcp:HOST:PORT, tcp:PORT, unix:PATH,
      unix:///PATH?port=N (hybrid vsock)

Options:
  --timeout MS     give up connecting after MS milliseconds
  --busy-poll US   ADDR is vsock: spin up to US microseconds before waiting for data or
                   the send window (connect()'s busyPoll; Deno and Node; costs CPU)
  -h, --help       this text

Exit codes: 0 done, 1 could not connect or the connection failed, 2 bad arguments.`,
  async run(args: string[]): Promise<number> {
    const { values, positionals } = parseCommand(args, {
      timeout: { type: "string" },
      "busy-poll": { type: "string" },
    });
    expectPositionals(positionals, ["ADDR"]);
    const endpoint = parseEndpoint(positionals[0]);
    const timeout = intOption(values.timeout, "--timeout", 1);
    const busyPoll = busyPollOption(values["busy-poll"], endpoint);
    let stream;
    try {
      stream = await dial(endpoint, { timeout, busyPoll });
    } catch (error) {
      process.stderr.write(`vsock connect: ${formatEndpoint(endpoint)}: ${errorText(error)}\n`);
      return 1;
    }
    const { error } = await stdioSession(stream);
    await endStdout();
    if (error) {
      process.stderr.write(`vsock connect: ${formatEndpoint(endpoint)}: ${errorText(error)}\n`);
      return 1;
    }
    return 0;
  },
};
