/**
 * `vsock listen ADDR [--keep]`: accept a connection and splice it with stdin/stdout.
 *
 * @module
 */
import process from "node:process";
import type { Duplex } from "node:stream";
import { type Command, errorText, expectPositionals, parseCommand } from "../command.ts";
import { parseEndpoint } from "../endpoint.ts";
import { endStdout, stdioSession } from "../stdio.ts";
import { type Peer, serve } from "../transport.ts";

/** See the module comment. */
export const listen: Command = {
  name: "listen",
  summary: "accept one connection (or each in turn) on stdin/stdout",
  usage: `Usage: vsock listen ADDR [--keep] [--verbose]

Listens on ADDR, accepts one connection and copies stdin to it and it to stdout;
exits 0 when both directions have ended. stdin's end half-closes the connection.

ADDR: vsock:PORT (any CID), vsock:CID:PORT, tcp:HOST:PORT, tcp:PORT, unix:PATH,
      unix:///PATH?port=N (hybrid vsock)

Options:
  -k, --keep     serve connections one after another until SIGINT/SIGTERM
                 (stdin goes to the connection being served; once it has ended,
                 later connections are half-closed at once)
  -v, --verbose  print the bound address and each peer on stderr
  -h, --help     this text

Exit codes: 0 done, 1 could not listen or the connection failed, 2 bad arguments.`,
  async run(args: string[]): Promise<number> {
    const { values, positionals } = parseCommand(args, {
      keep: { type: "boolean", short: "k" },
      verbose: { type: "boolean", short: "v" },
    });
    expectPositionals(positionals, ["ADDR"]);
    const endpoint = parseEndpoint(positionals[0]);
    const keep = values.keep === true;
    const verbose = values.verbose === true;
    const queue: { stream: Duplex; peer: Peer }[] = [];
    let wake: (() => void) | undefined;
    let server;
    try {
      server = await serve(endpoint, (stream, peer) => {
        queue.push({ stream, peer });
        wake?.();
      });
    } catch (error) {
      process.stderr.write(`vsock listen: ${positionals[0]}: ${errorText(error)}\n`);
      return 1;
    }
    if (verbose) process.stderr.write(`vsock listen: listening on ${server.address}\n`);
    let stopping = false;
    const stop = (): void => {
      stopping = true;
      server.close();
      endStdout().then(() => process.exit(0));
    };
    if (keep) {
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    }
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const { stream, peer } = queue.shift()!;
      if (!keep) {
        server.close();
        for (const extra of queue.splice(0)) extra.stream.destroy();
      }
      if (verbose) process.stderr.write(`vsock listen: connection from ${peer.text}\n`);
      const { error } = await stdioSession(stream);
      if (error) process.stderr.write(`vsock listen: ${peer.text}: ${errorText(error)}\n`);
      if (!keep || stopping) {
        await endStdout();
        return error ? 1 : 0;
      }
    }
  },
};
