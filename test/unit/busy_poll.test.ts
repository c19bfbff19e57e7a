/**
 * The reactor-driven stream's busy-poll window (`connect()`'s `busyPoll`),
 * over a Unix stream socket to a `node:net` peer on this machine: no vsock
 * traffic. What must hold: data arrives intact; a read after a send spins on
 * the JS thread for at most the window, once per send; a read with no send
 * before it parks at once, so an idle connection never holds the event loop;
 * a write that finds the window full spins at most the window, then parks.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM } from "../../src/constants.ts";
import { AF_UNIX, sockaddrUn } from "../../src/hybrid/addr.ts";
import { PolledStream } from "../../src/polled_stream.ts";
import { getReactor, libc } from "../../src/socket.ts";

/** A Unix socket server on a fresh path; `onConn` gets each accepted socket. */
async function peer(onConn: (socket: Socket) => void): Promise<{ path: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "vsock-busy-"));
  const path = join(dir, "peer.sock");
  const server: Server = createServer(onConn);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function dial(path: string, busyPollUs: number): PolledStream {
  const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert.ok(fd >= 0, `socket: ${fd}`);
  assert.equal(libc.connect(fd, sockaddrUn(path)), 0);
  return new PolledStream(fd, getReactor(), libc, busyPollUs);
}

/** How long the event loop could not run a timer while `start()`'s read was under way. */
async function loopBlockedMs(start: () => Promise<unknown>): Promise<{ blocked: number; result: Promise<unknown> }> {
  const t0 = performance.now();
  const timer = new Promise<number>((resolve) => setTimeout(() => resolve(performance.now() - t0), 0));
  const result = start();
  return { blocked: await timer, result };
}

test("busyPoll: 300 round trips of 1 B to 64 KiB arrive intact", async () => {
  const server = await peer((socket) => socket.pipe(socket));
  const stream = dial(server.path, 1_000);
  try {
    for (let i = 0; i < 300; i++) {
      const size = i % 3 === 0 ? 1 : i % 3 === 1 ? 1_500 : 65_536;
      const message = new Uint8Array(size).map((_, j) => (i * 7 + j) & 0xff);
      for (let sent = 0; sent < size;) sent += await stream.write(message.subarray(sent));
      const echo = new Uint8Array(size);
      for (let got = 0; got < size;) {
        const n = await stream.read(echo.subarray(got));
        assert.ok(n !== null, "unexpected end of stream");
        got += n;
      }
      assert.deepEqual(echo, message, `round trip ${i}`);
    }
  } finally {
    stream.close();
    await server.close();
  }
});

test("busyPoll: a read after a send spins at most the window, once; a read without a send parks at once", async () => {
  const WINDOW_US = 300_000;
  let answer: (() => void) | undefined;
  // The peer answers only when told to: the spin must give up, park, and still get the answer.
  const server = await peer((socket) => {
    socket.on("data", () => answer = () => socket.write("answer"));
  });
  const stream = dial(server.path, WINDOW_US);
  try {
    await stream.write(new TextEncoder().encode("question"));
    await new Promise((resolve) => setTimeout(resolve, 50)); // the peer has the question, no answer yet
    const buf = new Uint8Array(64);
    const first = await loopBlockedMs(() => stream.read(buf));
    // The read held the JS thread for the window (it spun), and not much longer.
    assert.ok(first.blocked >= WINDOW_US / 1000 - 20, `spun ${first.blocked.toFixed(0)} ms, want about 300`);
    assert.ok(first.blocked < WINDOW_US / 1000 + 1_000, `held the loop ${first.blocked.toFixed(0)} ms`);
    assert.ok(answer, "the peer got the question");
    answer();
    assert.equal(await first.result, 6, "the parked read got the answer after the spin missed");
    // No send since that answer: the next read parks without spinning.
    const second = await loopBlockedMs(() => stream.read(buf));
    assert.ok(second.blocked < 150, `a read with no send before it held the loop ${second.blocked.toFixed(0)} ms`);
    stream.close();
    assert.equal(await second.result, null, "close ends the parked read");
  } finally {
    stream.close();
    await server.close();
  }
});

test("busyPoll: a write that finds the window full spins at most the window, parks, and loses nothing", async () => {
  const WINDOW_US = 300_000;
  let peerSocket: Socket | undefined;
  let received = 0;
  const server = await peer((socket) => {
    peerSocket = socket;
    socket.pause(); // the peer reads nothing until told: the client's window fills
    socket.on("data", (d: Uint8Array) => received += d.byteLength);
  });
  const stream = dial(server.path, WINDOW_US);
  const chunk = new Uint8Array(65_536).fill(7);
  let sent = 0;
  try {
    let spun: { blocked: number; result: Promise<unknown> } | undefined;
    for (let i = 0; i < 200; i++) {
      const attempt = await loopBlockedMs(() => stream.write(chunk));
      if (attempt.blocked >= WINDOW_US / 1000 - 20) {
        spun = attempt;
        break;
      }
      const parked = new Promise<"parked">((resolve) => setTimeout(() => resolve("parked"), 1_000));
      const n = await Promise.race([attempt.result, parked]);
      assert.notEqual(n, "parked", `a write parked without spinning, after ${sent} bytes went through`);
      sent += n as number;
    }
    assert.ok(spun, `no write spun: ${sent} bytes went through without one`);
    assert.ok(spun.blocked < WINDOW_US / 1000 + 1_000, `held the loop ${spun.blocked.toFixed(0)} ms`);
    assert.ok(peerSocket, "the peer was connected");
    peerSocket.resume(); // the spin gave up and parked; the peer's reads now wake the parked write
    sent += (await spun.result) as number;
    stream.closeWrite();
    await new Promise<void>((resolve) => peerSocket?.once("end", resolve));
    assert.equal(received, sent, "every byte a write reported sent arrived");
  } finally {
    stream.close();
    peerSocket?.destroy(); // a paused peer would never see the end, and the server would wait for it
    await server.close();
  }
});
