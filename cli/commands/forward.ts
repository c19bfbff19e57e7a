/**
 * `vsock forward FROM TO`: accept on FROM, dial TO for each connection, splice both ways.
 *
 * @module
 */
import process from "node:process";
import type { Duplex } from "node:stream";
import { busyPollOption, type Command, errorText, expectPositionals, intOption, parseCommand } from "../command.ts";
import { formatEndpoint, parseEndpoint } from "../endpoint.ts";
import { type Splice, splice } from "../splice.ts";
import { dial, type Peer, serve } from "../transport.ts";
import { UsageError } from "../usage_error.ts";

/** See the module comment. */
export const forward: Command = {
  name: "forward",
  summary: "accept on FROM; for each connection dial TO; splice both ways",
  usage: `Usage: vsock forward FROM TO [options]

Listens on FROM; for each connection dials TO and copies bytes both ways. One
side's EOF is passed on as a half-close, so request/response protocols work.
A target that refuses or times out closes only that client's connection.

  vsock forward tcp:127.0.0.1:8080 vsock:3:80    a guest's port 80 on the host's localhost
  vsock forward vsock:5000 tcp:127.0.0.1:5000    a host service for guests (like vsock-proxy)
  vsock forward tcp:127.0.0.1:8080 unix:///run/vm1/v.sock?port=80
                                                 a Firecracker guest's port 80, from the host

Endpoints: vsock:CID:PORT (CID a number, local, host, any), vsock:PORT (any CID),
tcp:HOST:PORT, tcp:PORT (127.0.0.1), unix:PATH, and hybrid vsock unix:///PATH?port=N
(a Firecracker / Cloud Hypervisor VMM socket: dial the guest's port N, or listen
on PATH_N for guests dialing host port N)

Options:
  --allow-cid N          accept vsock peers with CID N only (repeatable; FROM must be vsock:)
  --max-conns N          at most N connections at once; beyond it new connections are
                         refused: accepted and closed at once, with a log line
  --connect-timeout MS   give up dialing TO after MS milliseconds
  --drain-timeout MS     on SIGINT/SIGTERM, end connections still open after MS milliseconds
  --busy-poll US         TO is vsock: spin up to US microseconds before waiting for its data or
                         send window (connect()'s busyPoll; Deno and Node; costs CPU)
  -v, --verbose          one line per connection on stderr: peer, bytes each way, duration, how it ended
  -q, --quiet            no log lines at all (errors included)
  -h, --help             this text

SIGINT/SIGTERM stop accepting and let open connections finish (a second signal or
--drain-timeout ends them); then the command exits 0.
Exit codes: 0 stopped by a signal, 1 could not listen on FROM, 2 bad arguments.`,
  async run(args: string[]): Promise<number> {
    const { values, positionals } = parseCommand(args, {
      "allow-cid": { type: "string", multiple: true },
      "max-conns": { type: "string" },
      "connect-timeout": { type: "string" },
      "drain-timeout": { type: "string" },
      "busy-poll": { type: "string" },
      verbose: { type: "boolean", short: "v" },
      quiet: { type: "boolean", short: "q" },
    });
    expectPositionals(positionals, ["FROM", "TO"]);
    const from = parseEndpoint(positionals[0]);
    const to = parseEndpoint(positionals[1]);
    const allowCids = ((values["allow-cid"] ?? []) as string[]).map((v) => intOption(v, "--allow-cid")!);
    if (allowCids.length > 0 && from.kind !== "vsock") {
      throw new UsageError(`--allow-cid needs a vsock: FROM endpoint, got "${positionals[0]}"`);
    }
    const maxConns = intOption(values["max-conns"], "--max-conns", 1);
    const connectTimeout = intOption(values["connect-timeout"], "--connect-timeout", 1);
    const drainTimeout = intOption(values["drain-timeout"], "--drain-timeout");
    const busyPoll = busyPollOption(values["busy-poll"], to);
    if (values.verbose && values.quiet) throw new UsageError("--verbose and --quiet exclude each other");
    const quiet = values.quiet === true;
    const verbose = values.verbose === true;
    const target = formatEndpoint(to);
    const log = (line: string): void => {
      if (!quiet) process.stderr.write(`vsock forward: ${line}\n`);
    };

    /** Open connections: each one's client, and its splice once the target is up. */
    const open = new Map<number, { client: Duplex; dialing: AbortController; splice?: Splice }>();
    let nextId = 1;
    let draining = false;
    let allDone: (() => void) | undefined;
    const settle = (id: number): void => {
      open.delete(id);
      if (draining && open.size === 0) allDone?.();
    };

    const handle = async (client: Duplex, peer: Peer): Promise<void> => {
      const id = nextId++;
      if (peer.cid !== undefined && allowCids.length > 0 && !allowCids.includes(peer.cid)) {
        client.destroy();
        log(`#${id} ${peer.text}: refused: CID ${peer.cid} is not allowed`);
        return;
      }
      if (maxConns !== undefined && open.size >= maxConns) {
        client.destroy();
        log(`#${id} ${peer.text}: refused: --max-conns ${maxConns} connections open`);
        return;
      }
      const started = Date.now();
      const entry: { client: Duplex; dialing: AbortController; splice?: Splice } = {
        client,
        dialing: new AbortController(),
      };
      open.set(id, entry);
      // A client that leaves while the target is being dialed gives up the dial.
      const onEarlyClose = (): void => entry.dialing.abort(new Error("client went away"));
      client.once("close", onEarlyClose);
      client.on("error", () => {}); // reported by the splice, or moot before it
      let server: Duplex;
      try {
        server = await dial(to, { timeout: connectTimeout, signal: entry.dialing.signal, busyPoll });
      } catch (error) {
        client.destroy();
        log(`#${id} ${peer.text}: target ${target}: ${errorText(error)}; closed the client`);
        settle(id);
        return;
      }
      client.removeListener("close", onEarlyClose);
      if (client.destroyed) {
        server.destroy();
        settle(id);
        return;
      }
      entry.splice = splice(client, server);
      const result = await entry.splice.done;
      if (verbose) {
        log(
          `#${id} ${peer.text} -> ${target}: ${result.aToB} bytes up, ${result.bToA} bytes down, ` +
            `${Date.now() - started} ms, ${result.ended}`,
        );
      }
      settle(id);
    };

    let server;
    try {
      server = await serve(from, (client, peer) => void handle(client, peer));
    } catch (error) {
      log(`cannot listen on ${positionals[0]}: ${errorText(error)}`);
      return 1;
    }
    log(`listening on ${server.address}, forwarding to ${target}`);

    await new Promise<void>((resolve) => {
      const endAll = (reason: string): void => {
        for (const entry of open.values()) {
          entry.dialing.abort(new Error(reason));
          if (entry.splice) entry.splice.abort(reason);
          else entry.client.destroy();
        }
        resolve();
      };
      const onSignal = (signal: string): void => {
        if (draining) {
          log(`${signal} again: ending ${open.size} open connection(s)`);
          endAll(`ended by ${signal}`);
          return;
        }
        draining = true;
        server.close();
        allDone = resolve;
        if (open.size === 0) return resolve();
        log(`${signal}: stopped accepting; waiting for ${open.size} open connection(s)`);
        if (drainTimeout !== undefined) {
          setTimeout(() => {
            log(`drain timeout: ending ${open.size} open connection(s)`);
            endAll("ended by --drain-timeout");
          }, drainTimeout);
        }
      };
      process.on("SIGINT", () => onSignal("SIGINT"));
      process.on("SIGTERM", () => onSignal("SIGTERM"));
    });
    // Let the verbose lines of connections just ended get out.
    await new Promise((resolve) => setTimeout(resolve, 50));
    return 0;
  },
};
