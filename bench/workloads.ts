/**
 * The benchmark workloads, written once against the `Deno.Conn` shape, so the
 * same loops measure this library, Deno's native vsock and TCP loopback.
 * Each prints one line of numbers on stdout for bench/run.sh to collect.
 */
import process from "node:process";
import { garbageCollector } from "../test/helpers.ts";

/** What a workload needs of a connection. */
export interface Conn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
}

/** Opens a connection to the benchmark server on `port`. */
export type Dial = (port: number) => Promise<Conn>;

async function writeAll(conn: Conn, data: Uint8Array): Promise<void> {
  for (let done = 0; done < data.length;) done += await conn.write(done === 0 ? data : data.subarray(done));
}

async function readExact(conn: Conn, buf: Uint8Array): Promise<void> {
  for (let got = 0; got < buf.length;) {
    const n = await conn.read(got === 0 ? buf : buf.subarray(got));
    if (n === null) throw new Error("unexpected EOF");
    got += n;
  }
}

async function pingpong(dial: Dial, port: number, rounds: number, size: number): Promise<string> {
  const conn = await dial(port);
  const msg = new Uint8Array(size);
  const reply = new Uint8Array(size);
  for (let i = 0; i < 200; i++) await writeAll(conn, msg).then(() => readExact(conn, reply)); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    await writeAll(conn, msg);
    await readExact(conn, reply);
  }
  const us = ((performance.now() - t0) * 1000) / rounds;
  conn.close();
  return us.toFixed(2);
}

async function stream(dial: Dial, port: number, total: number, chunkSize: number): Promise<string> {
  const conn = await dial(port);
  const chunk = new Uint8Array(chunkSize);
  const t0 = performance.now();
  for (let sent = 0; sent < total; sent += chunk.length) await writeAll(conn, chunk);
  await conn.closeWrite();
  const ack = new Uint8Array(8);
  await readExact(conn, ack);
  const got = Number(new DataView(ack.buffer).getBigUint64(0, true));
  if (got !== total) throw new Error(`sink counted ${got} of ${total}`);
  conn.close();
  return (total / 1048576 / ((performance.now() - t0) / 1000)).toFixed(1);
}

/** µs of CPU this process has used (every thread, user + system). */
function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/**
 * Sequential connect+close: connects per second, and the CPU µs this process spent per connect. CPU
 * close to wall time (1e6 / rate) means the client itself is the bottleneck, not the kernel or the server.
 */
async function connects(dial: Dial, port: number, count: number): Promise<string> {
  // Warm-up long enough for the JIT to settle: with 50, ours on Bun averaged 486-524 CPU µs over 2,000 connects and
  // 353-394 over 8,000 (guest), a difference that is start-up, not per-connect work.
  for (let i = 0; i < 500; i++) (await dial(port)).close();
  const cpu0 = cpuMicros();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) (await dial(port)).close();
  const rate = count / ((performance.now() - t0) / 1000);
  return `${rate.toFixed(0)} ${((cpuMicros() - cpu0) / count).toFixed(0)}`;
}

/** Opens `n` connections, 50 dials at a time. */
async function openMany(dial: Dial, port: number, n: number): Promise<Conn[]> {
  const conns: Conn[] = [];
  for (let i = 0; i < n; i += 50) {
    conns.push(...await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => dial(port))));
  }
  return conns;
}

/** N connections open at once, each doing `rounds` 64-byte ping-pongs; round trips/s and RSS growth per connection. */
async function many(dial: Dial, port: number, n: number, rounds: number): Promise<string> {
  const rssBefore = process.memoryUsage().rss;
  const conns = await openMany(dial, port, n);
  const t0 = performance.now();
  await Promise.all(conns.map(async (conn) => {
    const msg = new Uint8Array(64);
    const reply = new Uint8Array(64);
    for (let r = 0; r < rounds; r++) {
      await writeAll(conn, msg);
      await readExact(conn, reply);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const rssKiBPerConn = (process.memoryUsage().rss - rssBefore) / 1024 / n;
  for (const conn of conns) conn.close();
  return `${((n * rounds) / seconds).toFixed(0)} ${rssKiBPerConn.toFixed(1)}`;
}

/**
 * N connections opened (50 at a time) and left idle: RSS growth per connection,
 * measured once the process has settled (a collection where the runtime offers one).
 */
async function idle(dial: Dial, port: number, n: number): Promise<string> {
  const collect = garbageCollector() ?? ((): void => {});
  collect();
  const rssBefore = process.memoryUsage().rss;
  const conns = await openMany(dial, port, n);
  await new Promise((r) => setTimeout(r, 500));
  collect();
  const rssKiBPerConn = (process.memoryUsage().rss - rssBefore) / 1024 / n;
  for (const conn of conns) conn.close();
  return rssKiBPerConn.toFixed(1);
}

/** Runs the workload named on the command line: `MODE PORT ARGS...`. */
export async function main(dial: Dial): Promise<void> {
  const [mode, port, a, b] = process.argv.slice(2);
  const p = Number(port);
  const out = mode === "pingpong"
    ? await pingpong(dial, p, Number(a), Number(b))
    : mode === "stream"
    ? await stream(dial, p, Number(a), Number(b))
    : mode === "connects"
    ? await connects(dial, p, Number(a))
    : mode === "many"
    ? await many(dial, p, Number(a), Number(b))
    : mode === "idle"
    ? await idle(dial, p, Number(a))
    : undefined;
  if (out === undefined) throw new Error(`unknown mode ${mode}`);
  console.log(out);
  process.exit(0);
}
