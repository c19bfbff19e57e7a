/**
 * `vsock ping ADDR [-c N]`: repeated connects, like tcping.
 *
 * @module
 */
import process from "node:process";
import { type Command, errorText, expectPositionals, intOption, parseCommand } from "../command.ts";
import { formatEndpoint, parseEndpoint } from "../endpoint.ts";
import { dial } from "../transport.ts";

/** See the module comment. */
export const ping: Command = {
  name: "ping",
  summary: "repeated connects (like tcping): time per try, loss, min/avg/max",
  usage: `Usage: vsock ping ADDR [-c N] [-i MS] [--timeout MS]

Connects to ADDR and closes again, N times; prints the time each connect took,
then the loss and min/avg/max. A listening peer is all it needs.

ADDR: vsock:CID:PORT (CID a number, local, host), tcp:HOST:PORT, tcp:PORT, unix:PATH,
      unix:///PATH?port=N (hybrid vsock)

Options:
  -c, --count N     tries (default 4)
  -i, --interval MS pause between tries (default 1000)
  --timeout MS      a try that takes longer fails (default 2000)
  -h, --help        this text

Exit codes: 0 at least one connect succeeded, 1 none did, 2 bad arguments.`,
  async run(args: string[]): Promise<number> {
    const { values, positionals } = parseCommand(args, {
      count: { type: "string", short: "c" },
      interval: { type: "string", short: "i" },
      timeout: { type: "string" },
    });
    expectPositionals(positionals, ["ADDR"]);
    const endpoint = parseEndpoint(positionals[0]);
    const count = intOption(values.count, "-c/--count", 1) ?? 4;
    const interval = intOption(values.interval, "-i/--interval") ?? 1000;
    const timeout = intOption(values.timeout, "--timeout", 1) ?? 2000;
    const name = formatEndpoint(endpoint);
    const times: number[] = [];
    for (let seq = 1; seq <= count; seq++) {
      if (seq > 1 && interval > 0) await new Promise((resolve) => setTimeout(resolve, interval));
      const start = performance.now();
      try {
        const stream = await dial(endpoint, { timeout });
        const ms = performance.now() - start;
        stream.destroy();
        times.push(ms);
        process.stdout.write(`connected to ${name}: seq=${seq} time=${ms.toFixed(3)} ms\n`);
      } catch (error) {
        process.stdout.write(`no connection to ${name}: seq=${seq} ${errorText(error)}\n`);
      }
    }
    const loss = ((count - times.length) / count) * 100;
    process.stdout.write(`--- ${name} ping: ${count} tries, ${times.length} connected, ${loss.toFixed(1)}% loss\n`);
    if (times.length > 0) {
      const avg = times.reduce((a, b) => a + b, 0) / times.length;
      const fmt = (n: number): string => n.toFixed(3);
      process.stdout.write(`min/avg/max = ${fmt(Math.min(...times))}/${fmt(avg)}/${fmt(Math.max(...times))} ms\n`);
    }
    return times.length > 0 ? 0 : 1;
  },
};
