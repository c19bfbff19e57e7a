/**
 * One runtime's part of the soak (test/soak/run.ts drives it over stdin and
 * stdout): it serves a stream echo, a seqpacket echo and an HTTP echo on CID
 * 1, and on command runs a mixed load against every peer it is given —
 * connect/close churn, ping-pong, 1 MiB checksummed streams, seqpacket
 * messages, HTTP requests — sampling RSS, open fds and reactor registrations.
 *
 * stdout lines: `ready {ports}`, `sample {...}` while loading, `idle {counts}`
 * when a load phase has drained, `measure {...}`, `bye {counts}`. stdin lines:
 * `targets {...}`, `load SECONDS`, `measure`, `exit`. Only CID 1 is dialed.
 */
import { createHash } from "node:crypto";
import process from "node:process";
import { createInterface } from "node:readline";
import { connect, listen, type VsockConn, type VsockSeqpacketConn } from "../../mod.ts";
import { createHttpClient, serve, type VsockHttpClient } from "../../http.ts";
import { reactorStats } from "../../src/reactor.ts";
import { garbageCollector, openFds } from "../helpers.ts";

/** A peer's name and port, one list per protocol. */
export interface Targets {
  stream: { name: string; port: number; churn: boolean }[];
  seqpacket: { name: string; port: number }[];
  http: { name: string; port: number }[];
}

const SAMPLE_MS = Number(process.env.SOAK_SAMPLE_MS ?? 5000);
const MiB = 1024 * 1024;

const counts = {
  churn: 0,
  pingpong: 0,
  streams: 0,
  messages: 0,
  http: 0,
  mismatches: 0,
  clientErrors: 0,
  /**
   * POSTs whose keep-alive connection the server closed as it was reused (the race every HTTP/1.1 pool
   * has): a POST is not sent twice, so the caller sees it. PUTs alternate with POSTs and are sent once
   * more by the client, so a PUT failing that way is a problem.
   */
  httpResets: 0,
  serverErrors: 0,
  unhandled: 0,
};
const problems: string[] = [];

/** Resolves after `ms`; failing lanes pause so a fast failure loop cannot starve the timers. */
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function problem(kind: "mismatches" | "clientErrors" | "unhandled", what: string): void {
  counts[kind]++;
  if (problems.length < 20) problems.push(what);
  console.log(`problem ${JSON.stringify({ kind, what })}`);
}

process.on("unhandledRejection", (reason: unknown) => problem("unhandled", `unhandled rejection: ${String(reason)}`));

const sha = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** 2 MiB of random bytes; payloads are slices of it at random offsets. */
const noise = new Uint8Array(2 * MiB);
for (let at = 0; at < noise.byteLength; at += 65536) crypto.getRandomValues(noise.subarray(at, at + 65536));
function payload(size: number): Uint8Array {
  const at = Math.floor(Math.random() * (noise.byteLength - size));
  return noise.subarray(at, at + size);
}

// ---- servers

async function echoStream(conn: VsockConn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) await conn.writeAll(buf.subarray(0, n));
    await conn.closeWrite();
  } catch {
    counts.serverErrors++;
  } finally {
    conn.close();
  }
}

async function echoMessages(conn: VsockSeqpacketConn): Promise<void> {
  try {
    for await (const message of conn) await conn.send(message);
  } catch {
    counts.serverErrors++;
  } finally {
    conn.close();
  }
}

const streamListener = listen();
const seqListener = listen({ type: "seqpacket" });
(async () => {
  for await (const conn of streamListener) void echoStream(conn);
})();
(async () => {
  for await (const conn of seqListener) void echoMessages(conn);
})();
const httpServer = serve({ onListen: () => {} }, async (req) => new Response(await req.arrayBuffer()));

// ---- load

let targets: Targets = { stream: [], seqpacket: [], http: [] };
let loading = false;
let turn = 0;
function pick<T>(list: T[]): T {
  return list[turn++ % list.length];
}

async function readExactly(conn: VsockConn, into: Uint8Array): Promise<boolean> {
  let got = 0;
  while (got < into.byteLength) {
    const n = await conn.read(into.subarray(got));
    if (n === null) return false;
    got += n;
  }
  return true;
}

async function churn(): Promise<void> {
  const list = targets.stream.filter((t) => t.churn);
  while (loading) {
    const target = pick(list);
    try {
      (await connect({ cid: 1, port: target.port })).close();
      counts.churn++;
    } catch (error) {
      problem("clientErrors", `churn to ${target.name}: ${String(error)}`);
      await sleep(100);
    }
  }
}

async function pingpong(target: { name: string; port: number }): Promise<void> {
  let conn: VsockConn | undefined;
  try {
    conn = await connect({ cid: 1, port: target.port });
    const back = new Uint8Array(32);
    while (loading) {
      const ping = payload(32);
      await conn.writeAll(ping);
      if (!(await readExactly(conn, back))) throw new Error("EOF in ping-pong");
      if (sha(back) !== sha(ping)) problem("mismatches", `ping-pong with ${target.name}`);
      counts.pingpong++;
    }
  } catch (error) {
    problem("clientErrors", `ping-pong with ${target.name}: ${String(error)}`);
    await sleep(100);
  } finally {
    conn?.close();
  }
}

async function streams(): Promise<void> {
  while (loading) {
    const target = pick(targets.stream);
    try {
      const conn = await connect({ cid: 1, port: target.port });
      try {
        const data = payload(MiB);
        const received = createHash("sha256");
        let length = 0;
        const reading = (async () => {
          const buf = new Uint8Array(100_000);
          for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
            received.update(buf.subarray(0, n));
            length += n;
          }
        })();
        await conn.writeAll(data);
        await conn.closeWrite();
        await reading;
        if (length !== MiB || received.digest("hex") !== sha(data)) {
          problem("mismatches", `1 MiB stream via ${target.name}: ${length} bytes back, checksum differs`);
        } else counts.streams++;
      } finally {
        conn.close();
      }
    } catch (error) {
      problem("clientErrors", `1 MiB stream via ${target.name}: ${String(error)}`);
      await sleep(100);
    }
  }
}

async function messages(): Promise<void> {
  while (loading) {
    const target = pick(targets.seqpacket);
    try {
      const conn = await connect({ cid: 1, port: target.port, type: "seqpacket" });
      try {
        for (let i = 0; i < 20 && loading; i++) {
          const message = payload(1 + Math.floor(Math.random() * 64 * 1024));
          await conn.send(message);
          const back = await conn.receive();
          if (back === null || sha(back) !== sha(message)) {
            problem("mismatches", `seqpacket message via ${target.name}: ${back?.byteLength ?? "EOF"}`);
          } else counts.messages++;
        }
      } finally {
        conn.close();
      }
    } catch (error) {
      problem("clientErrors", `seqpacket via ${target.name}: ${String(error)}`);
      await sleep(100);
    }
  }
}

async function requests(clients: Map<string, VsockHttpClient>): Promise<void> {
  let method = "POST";
  while (loading) {
    const target = pick(targets.http);
    method = method === "POST" ? "PUT" : "POST";
    try {
      const client = clients.get(target.name)!;
      const body = payload(16 * 1024);
      const res = await client.fetch("/echo", { method, body: body.slice() });
      const back = new Uint8Array(await res.arrayBuffer());
      if (res.status !== 200 || sha(back) !== sha(body)) {
        problem("mismatches", `HTTP ${method} via ${target.name}: ${res.status}, ${back.byteLength} bytes`);
      } else counts.http++;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (
        method === "POST" && (code === "EPIPE" || code === "ECONNRESET" || String(error).includes("socket hang up"))
      ) {
        counts.httpResets++;
        continue;
      }
      problem("clientErrors", `HTTP ${method} via ${target.name}: ${String(error)}`);
      await sleep(100);
    }
  }
}

function snapshot(): Record<string, number> {
  const { registered, parked } = reactorStats();
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, external, arrayBuffers, fds: openFds(), registered, parked, ...counts };
}

async function load(seconds: number): Promise<void> {
  loading = true;
  const clients = new Map(targets.http.map((t) => [t.name, createHttpClient({ cid: 1, port: t.port })]));
  const lanes = [
    churn(),
    churn(),
    streams(),
    streams(),
    messages(),
    requests(clients),
    ...targets.stream.filter((t) => t.churn).map((t) => pingpong(t)),
  ];
  const sampler = setInterval(() => console.log(`sample ${JSON.stringify(snapshot())}`), SAMPLE_MS);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  loading = false;
  await Promise.all(lanes);
  clearInterval(sampler);
  for (const client of clients.values()) client.close();
  console.log(`idle ${JSON.stringify(counts)}`);
}

function collectGarbage(): void {
  garbageCollector()?.();
}

/**
 * Sends 8 messages at once over 8 seqpacket connections to our own server:
 * the runtime's pool of sender threads (Bun, Node: 4, made on demand, each
 * with fds of its own) is full before the first measurement, so a later
 * measurement compares like with like.
 */
async function prime(): Promise<void> {
  const conns = await Promise.all(
    Array.from({ length: 8 }, () => connect({ cid: 1, port: seqListener.addr.port, type: "seqpacket" })),
  );
  await Promise.all(conns.map(async (conn) => {
    await conn.send(payload(64 * 1024));
    await conn.receive();
    conn.close();
  }));
}
await prime();

console.log(
  `ready ${
    JSON.stringify({ stream: streamListener.addr.port, seqpacket: seqListener.addr.port, http: httpServer.addr.port })
  }`,
);
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const [command, ...rest] = line.split(" ");
  if (command === "targets") targets = JSON.parse(rest.join(" "));
  else if (command === "load") await load(Number(rest[0]));
  else if (command === "measure") {
    // Peers' closes reach us a little after their loads stop: measure once fds and registrations hold still.
    let last = "";
    for (let i = 0; i < 20; i++) {
      collectGarbage();
      await sleep(500);
      const now = `${openFds()} ${reactorStats().registered}`;
      if (now === last) break;
      last = now;
    }
    console.log(`measure ${JSON.stringify(snapshot())}`);
  } else if (command === "exit") break;
}
streamListener.close();
seqListener.close();
await httpServer.shutdown();
console.log(`bye ${JSON.stringify({ ...counts, problems })}`);
process.exit(counts.mismatches + counts.clientErrors + counts.unhandled > 0 ? 1 : 0);
