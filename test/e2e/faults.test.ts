/**
 * Faults over real AF_VSOCK CID 1, on every runtime: peers SIGKILLed in each
 * direction and during accept/connect, close() from another task while an
 * operation is pending, a listener closed with 100 connections in flight,
 * AbortSignal at every stage, fd exhaustion and GC pressure (in child
 * processes). Each operation must settle promptly with a typed error or EOF,
 * leave no fd or reactor registration behind, and the next connection must work.
 */
import { test } from "node:test";
import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";
import { connect, listen, type VsockConn, VsockError, type VsockListener, type VsockSeqpacketConn } from "../../mod.ts";
import { createHttpClient, serve } from "../../http.ts";
import { reactorStats } from "../../src/reactor.ts";
import { EAGAIN, EINPROGRESS } from "../../src/errno.ts";
import { eventually, openFds, RUNTIME, sleep, withTimeout } from "../helpers.ts";
import { misreportErrno } from "../misreport.ts";
import { BUN, DENO, NODE, NODE_ARGS, Peer, ROOT } from "./procs.ts";

/** Hang detection: every fault must settle well within this. */
const PROMPT = 10_000;
const KiB = 1024;

/** Codes a broken connection may surface as; anything else (or an untyped error) fails. */
const BROKEN = new Set(["ECONNRESET", "EPIPE", "ENOTCONN", "ESHUTDOWN", "ECONNABORTED", "EBADF"]);

function assertBroken(error: unknown, what: string): void {
  assert.ok(error instanceof VsockError, `${what}: not a VsockError: ${String(error)}`);
  assert.ok(BROKEN.has(error.code), `${what}: unexpected ${error.code}: ${error.message}`);
}

/** Reads until EOF or an error; the end must come within PROMPT. Returns how it ended. */
async function drainToEnd(conn: VsockConn, what: string): Promise<"eof" | string> {
  const buf = new Uint8Array(64 * KiB);
  try {
    await withTimeout(
      (async () => {
        while (await conn.read(buf) !== null) { /* discard */ }
      })(),
      PROMPT,
      `${what}: read never ended`,
    );
    return "eof";
  } catch (error) {
    assertBroken(error, what);
    return (error as VsockError).code;
  }
}

/** A fresh listener and one round trip through it: the process and its reactor still work. */
async function nextConnectionWorks(): Promise<void> {
  using listener = listen();
  const [client, server] = await withTimeout(
    Promise.all([connect({ cid: 1, port: listener.addr.port }), listener.accept()]),
    PROMPT,
    "the next connection hung",
  );
  try {
    await client.writeAll(new Uint8Array([1, 2, 3]));
    const got = new Uint8Array(3);
    let n = 0;
    while (n < 3) n += (await server.read(got.subarray(n))) ?? assert.fail("EOF on the next connection");
    assert.deepEqual([...got], [1, 2, 3]);
  } finally {
    client.close();
    server.close();
  }
}

let warm: Promise<void> | undefined;

/**
 * The fd count and reactor registrations to come back to. The first call
 * warms up first: the reactor's epoll fd and eventfd, and the runtime's own
 * lazily opened fds, are there for good once the first connection has run.
 */
async function baseline(): Promise<{ fds: number; registered: number }> {
  warm ??= (async () => {
    await nextConnectionWorks();
    // A message send starts the runtime's sender threads (Bun, Node), which keep fds of their own.
    using listener = listen({ type: "seqpacket" });
    using client = await connect({ cid: 1, port: listener.addr.port, type: "seqpacket" });
    using server = await listener.accept();
    await client.send(new Uint8Array([1]));
    assert.deepEqual(await server.receive(), new Uint8Array([1]));
  })();
  await warm;
  return { fds: openFds(), registered: reactorStats().registered };
}

/** What must hold after each fault: fds and reactor registrations back to where they were. */
async function nothingLeaked(fds: number, registered: number): Promise<void> {
  await eventually(() => openFds() <= fds, 5000, `fd count back to ${fds} (now ${openFds()})`);
  await eventually(
    () => reactorStats().registered <= registered,
    5000,
    `reactor registrations back to ${registered} (now ${reactorStats().registered})`,
  );
}

/** SIGKILLs a peer and waits until it is gone (its pipes closed). */
async function stop(peer: Peer): Promise<void> {
  peer.kill();
  await withTimeout(peer.exited, PROMPT, "a SIGKILLed peer did not exit");
}

/**
 * The python3 binary itself: a version manager's shim (pyenv) costs seconds
 * per start in the VM, and these tests start a dozen peers.
 */
const PYTHON = execFileSync("python3", ["-c", "import sys; print(sys.executable)"]).toString().trim() || "python3";

function faultPeer(...args: (string | number)[]): Peer {
  return new Peer(PYTHON, ["test/peers/fault_peer.py", ...args.map(String)]);
}

/** Our listener, the python peer dialed into it, and our end of that connection. */
async function peerConnection(
  mode: string,
  type: "stream" | "seqpacket" = "stream",
): Promise<
  { listener: VsockListener<VsockConn | VsockSeqpacketConn>; peer: Peer; conn: VsockConn | VsockSeqpacketConn }
> {
  const listener = type === "stream" ? listen() : listen({ type: "seqpacket" });
  const peer = faultPeer(mode, listener.addr.port, type);
  const conn: VsockConn | VsockSeqpacketConn = await withTimeout(
    (listener as VsockListener<VsockConn | VsockSeqpacketConn>).accept(),
    30_000,
    "the peer never connected",
  );
  await peer.match(/connected/);
  return { listener, peer, conn };
}

test("peer SIGKILLed while it sends and we read: the read ends with EOF or ECONNRESET", async () => {
  const { fds, registered } = await baseline();
  const { listener, peer, conn } = await peerConnection("source");
  const stream = conn as VsockConn;
  try {
    const buf = new Uint8Array(64 * KiB);
    let got = 0;
    while (got < 512 * KiB) got += (await stream.read(buf)) ?? assert.fail("EOF before the kill");
    await stop(peer);
    await drainToEnd(stream, "read after the sender died");
  } finally {
    await stop(peer);
    stream.close();
    listener.close();
  }
  await nextConnectionWorks();
  await nothingLeaked(fds, registered);
});

test("peer SIGKILLed while it reads what we write: our writes reject with a typed error", async () => {
  const { listener, peer, conn } = await peerConnection("sink");
  const stream = conn as VsockConn;
  try {
    const chunk = new Uint8Array(256 * KiB);
    let sent = 0;
    const writing = (async () => {
      for (;;) {
        await stream.writeAll(chunk);
        sent += chunk.byteLength;
      }
    })();
    writing.catch(() => {}); // looked at below, after the kill
    await eventually(() => sent >= 2 * 1024 * KiB, 30_000, "2 MiB written to the sink");
    await stop(peer);
    await withTimeout(
      writing.then(() => assert.fail("writing ended without an error"), (e) => assertBroken(e, "write")),
      PROMPT,
      "the write hung after the reader died",
    );
  } finally {
    await stop(peer);
    stream.close();
    listener.close();
  }
  await nextConnectionWorks();
});

test("peer SIGKILLed while our writeAll waits on a full window: it rejects, nothing hangs", async () => {
  const { listener, peer, conn } = await peerConnection("stall");
  const stream = conn as VsockConn;
  try {
    let settled = false;
    const writing = stream.writeAll(new Uint8Array(8 * 1024 * KiB)).finally(() => (settled = true));
    writing.catch(() => {});
    await sleep(500);
    assert.equal(settled, false, "8 MiB fit into a peer that never reads: the window was not full");
    await stop(peer);
    await withTimeout(
      writing.then(() => assert.fail("writeAll resolved"), (e) => assertBroken(e, "writeAll")),
      PROMPT,
      "writeAll hung after the peer died",
    );
  } finally {
    await stop(peer);
    stream.close();
    listener.close();
  }
  await nextConnectionWorks();
});

test("seqpacket: peer SIGKILLed while it sends (receive ends) and while our send is blocked (send rejects)", async () => {
  const { fds, registered } = await baseline();
  {
    const { listener, peer, conn } = await peerConnection("source", "seqpacket");
    const messages = conn as VsockSeqpacketConn;
    try {
      for (let i = 0; i < 20; i++) assert.ok(await messages.receive(), "end of messages before the kill");
      await stop(peer);
      await withTimeout(
        (async () => {
          try {
            while (await messages.receive() !== null) { /* discard */ }
          } catch (error) {
            assertBroken(error, "receive");
          }
        })(),
        PROMPT,
        "receive hung after the sender died",
      );
    } finally {
      await stop(peer);
      messages.close();
      listener.close();
    }
  }
  {
    const { listener, peer, conn } = await peerConnection("stall", "seqpacket");
    const messages = conn as VsockSeqpacketConn;
    try {
      // Blocking sends off the JS thread: the peer's window fills and one stays blocked in the kernel.
      let sent = 0;
      const sending = (async () => {
        for (;;) {
          await messages.send(new Uint8Array(32 * KiB));
          sent++;
        }
      })();
      sending.catch(() => {});
      await eventually(() => sent >= 4, 30_000, "four messages sent");
      await sleep(500);
      const stuck = sent;
      assert.ok(stuck < 100, `${stuck} messages of 32 KiB fit into a peer that never reads`);
      await stop(peer);
      await withTimeout(
        sending.then(() => assert.fail("send resolved"), (e) => assertBroken(e, "send")),
        PROMPT,
        "a blocked send hung after the peer died",
      );
    } finally {
      await stop(peer);
      messages.close();
      listener.close();
    }
  }
  await nextConnectionWorks();
  await nothingLeaked(fds, registered);
});

test("a peer that connects and is SIGKILLed during our pending accept: accept and the next connection work", async () => {
  const { fds, registered } = await baseline();
  using listener = listen();
  const accepting = listener.accept();
  const peer = faultPeer("die", listener.addr.port);
  try {
    await withTimeout(peer.exited, 30_000, "the dying peer did not die");
    // The dead peer's connection may still be handed out; it must read as ended.
    const ours = await connect({ cid: 1, port: listener.addr.port });
    try {
      let accepted = await withTimeout(accepting, PROMPT, "accept hung");
      if (accepted.remoteAddr.port !== ours.localAddr.port) {
        await drainToEnd(accepted, "the dead peer's connection");
        accepted.close();
        accepted = await withTimeout(listener.accept(), PROMPT, "accept after the dead peer hung");
      }
      assert.equal(accepted.remoteAddr.port, ours.localAddr.port);
      await ours.writeAll(new Uint8Array([9]));
      const one = new Uint8Array(1);
      assert.equal(await accepted.read(one), 1);
      assert.equal(one[0], 9);
      accepted.close();
    } finally {
      ours.close();
    }
  } finally {
    await stop(peer);
  }
  listener.close();
  await nothingLeaked(fds, registered);
});

test("a listener's process SIGKILLed with 20 of our connects in flight: each settles typed, nothing leaks", async () => {
  const { fds, registered } = await baseline();
  const peer = faultPeer("listen");
  try {
    const port = Number((await peer.match(/ready (\d+)/))[1]);
    const connects = Array.from({ length: 20 }, () => connect({ cid: 1, port }));
    peer.kill(); // at once: the connects are still in flight
    const outcomes = await withTimeout(Promise.allSettled(connects), PROMPT, "a connect hung after the listener died");
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") assertBroken(outcome.reason, "connect");
      else {
        await drainToEnd(outcome.value, "a connection to the dead listener");
        outcome.value.close();
      }
    }
  } finally {
    await stop(peer);
  }
  await nextConnectionWorks();
  await nothingLeaked(fds, registered);
});

test("connect asks the socket when errno reads wrong: a misread EINPROGRESS connects, a misread failure is the real one, nothing spins", async () => {
  const { fds, registered } = await baseline();
  const ENOENT = 2;
  for (const reported of [ENOENT, EAGAIN]) {
    const fake = misreportErrno("connect", -EINPROGRESS, reported);
    try {
      await nextConnectionWorks();
      assert.ok(fake.used(), "the kernel never said EINPROGRESS: the misread was not exercised");
    } finally {
      fake.undo();
    }
  }
  // Nothing listens: the kernel's answer (a reset) wins over the misread ENOENT.
  const port = ((): number => {
    using listener = listen();
    return listener.addr.port;
  })();
  const refused = misreportErrno("connect", -EINPROGRESS, ENOENT);
  try {
    await assert.rejects(withTimeout(connect({ cid: 1, port }), PROMPT, "a refused connect hung"), {
      name: "VsockError",
      code: "ECONNRESET",
    });
    assert.ok(refused.used());
  } finally {
    refused.undo();
  }
  // Reported as started but never started: connect() asks again, and that call starts it.
  const never = misreportErrno("connect", "skip", EINPROGRESS);
  try {
    const t0 = performance.now();
    await nextConnectionWorks();
    assert.ok(never.used());
    const took = performance.now() - t0;
    assert.ok(took < 1000, `the connect took ${took.toFixed(0)} ms: it waited on a socket that was not connecting`);
  } finally {
    never.undo();
  }
  // Both calls misread: an unconnected vsock socket polls writable, so a wait for it would spin until the
  // timeout. Through the reactor (Deno, Node) the wake-up asks connect() again, which starts it; Bun's loop
  // (which takes a connecting socket) finds it writable and not connected: a typed ENOTCONN, at once.
  const first = misreportErrno("connect", "skip", EINPROGRESS);
  const second = misreportErrno("connect", "skip", EINPROGRESS);
  try {
    const t0 = performance.now();
    using listener = listen();
    const attempt = connect({ cid: 1, port: listener.addr.port, timeout: 3000 });
    if (RUNTIME === "bun") {
      await assert.rejects(attempt, { name: "VsockError", code: "ENOTCONN" });
    } else {
      const [client, server] = await Promise.all([attempt, listener.accept()]);
      client.close();
      server.close();
    }
    assert.ok(first.used() && second.used());
    const took = performance.now() - t0;
    assert.ok(took < 1000, `the connect took ${took.toFixed(0)} ms: it waited on a socket that was not connecting`);
  } finally {
    second.undo();
    first.undo();
  }
  await nothingLeaked(fds, registered);
});

test("accept asks again when errno reads wrong: an EAGAIN read as ENOENT does not end accept or a serve loop", async () => {
  const { fds, registered } = await baseline();
  using listener = listen();
  const misread = misreportErrno("accept4", -EAGAIN, 2 /* ENOENT */);
  try {
    const [server, client] = await withTimeout(
      Promise.all([listener.accept(), connect({ cid: 1, port: listener.addr.port })]),
      PROMPT,
      "the accept or the connect hung",
    );
    assert.ok(misread.used(), "accept4 never said EAGAIN: the misread was not exercised");
    await client.writeAll(new Uint8Array([9]));
    assert.deepEqual(await server.read(new Uint8Array(1)), 1);
    client.close();
    server.close();
  } finally {
    misread.undo();
  }
  listener.close();
  await nothingLeaked(fds, registered);
});

test("close() from another task: pending read → null, write/writeAll → EPIPE-like error, accept → EBADF", async () => {
  const { fds, registered } = await baseline();
  const listener = listen();
  const [client, server] = await Promise.all([connect({ cid: 1, port: listener.addr.port }), listener.accept()]);
  // read
  const reading = client.read(new Uint8Array(10));
  await sleep(50);
  setTimeout(() => client.close(), 0);
  assert.equal(await withTimeout(reading, PROMPT, "read hung after close()"), null);
  server.close();
  // write and writeAll at once, into a window the peer never drains
  const [writer, stalled] = await Promise.all([connect({ cid: 1, port: listener.addr.port }), listener.accept()]);
  let written = 0;
  const filling = (async () => {
    for (;;) written += await writer.write(new Uint8Array(64 * KiB));
  })();
  filling.catch(() => {});
  const all = writer.writeAll(new Uint8Array(4 * 1024 * KiB));
  all.catch(() => {});
  await sleep(300);
  setTimeout(() => writer.close(), 0);
  await withTimeout(
    filling.then(() => assert.fail("write resolved"), (e) => assertBroken(e, "write")),
    PROMPT,
    "write hung after close()",
  );
  await withTimeout(
    all.then(() => assert.fail("writeAll resolved"), (e) => assertBroken(e, "writeAll")),
    PROMPT,
    "writeAll hung after close()",
  );
  assert.ok(written > 0);
  // accept
  const accepting = listener.accept();
  setTimeout(() => listener.close(), 0);
  await withTimeout(
    assert.rejects(accepting, (e) => e instanceof VsockError && e.code === "EBADF"),
    PROMPT,
    "accept hung after close()",
  );
  // Calls after close() reject at once.
  await assert.rejects(client.read(new Uint8Array(1)), { name: "VsockError", code: "EBADF" });
  await assert.rejects(writer.write(new Uint8Array(1)), { name: "VsockError", code: "EBADF" });
  stalled.close();
  await nextConnectionWorks();
  await nothingLeaked(fds, registered);
});

test("close() from another task: seqpacket receive → null, a send blocked in the kernel → typed error", async () => {
  const { fds, registered } = await baseline();
  using listener = listen({ type: "seqpacket" });
  const [client, server] = await Promise.all([
    connect({ cid: 1, port: listener.addr.port, type: "seqpacket" }),
    listener.accept(),
  ]);
  const receiving = client.receive();
  setTimeout(() => client.close(), 20);
  assert.equal(await withTimeout(receiving, PROMPT, "receive hung after close()"), null);
  const [a, b] = await Promise.all([
    connect({ cid: 1, port: listener.addr.port, type: "seqpacket" }),
    listener.accept(),
  ]);
  let sent = 0;
  const sending = (async () => {
    for (;;) {
      await a.send(new Uint8Array(32 * KiB));
      sent++;
    }
  })();
  sending.catch(() => {});
  await eventually(() => sent >= 4, 30_000, "four messages sent");
  await sleep(300);
  a.close();
  await withTimeout(
    sending.then(() => assert.fail("send resolved"), (e) => assertBroken(e, "send")),
    PROMPT,
    "a blocked send hung after close()",
  );
  b.close();
  server.close();
  listener.close();
  await nextConnectionWorks();
  await nothingLeaked(fds, registered);
});

test("a listener closed with 100 connections in flight: every connect settles, accepted ones end, nothing leaks", async () => {
  const { fds, registered } = await baseline();
  const listener = listen();
  const accepted: VsockConn[] = [];
  const serving = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  const connects = Array.from({ length: 100 }, () => connect({ cid: 1, port: listener.addr.port }));
  await eventually(() => accepted.length >= 10, 30_000, "10 accepted");
  listener.close();
  await withTimeout(serving, PROMPT, "the for await loop did not end after close()");
  const outcomes = await withTimeout(Promise.allSettled(connects), PROMPT, "a connect hung");
  let connected = 0;
  for (const outcome of outcomes) {
    if (outcome.status === "rejected") assertBroken(outcome.reason, "connect");
    else connected++;
  }
  assert.ok(connected >= accepted.length, `${connected} connected, ${accepted.length} accepted`);
  // Connections the kernel established but nobody accepted are reset with the listener.
  for (const outcome of outcomes) {
    if (outcome.status === "fulfilled" && !accepted.some((s) => s.remoteAddr.port === outcome.value.localAddr.port)) {
      await drainToEnd(outcome.value, "a connection never accepted");
    }
  }
  for (const s of accepted) s.close();
  for (const outcome of outcomes) if (outcome.status === "fulfilled") outcome.value.close();
  await nextConnectionWorks();
  await nothingLeaked(fds, registered);
});

test("AbortSignal at every stage of connect and fetch: settles with the reason, nothing leaks", async () => {
  const { fds, registered } = await baseline();
  using listener = listen();
  const port = listener.addr.port;
  // Before: rejects at once with the reason.
  const before = new AbortController();
  const reason = new Error("stop");
  before.abort(reason);
  await assert.rejects(connect({ cid: 1, port, signal: before.signal }), (e) => e === reason);
  // In flight: aborted in the same task as the connect call.
  for (let i = 0; i < 20; i++) {
    const during = new AbortController();
    const pending = connect({ cid: 1, port, signal: during.signal });
    during.abort(reason);
    try {
      (await withTimeout(pending, PROMPT, "an aborted connect hung")).close();
    } catch (error) {
      assert.equal(error, reason);
    }
  }
  // After: no effect on the connection. (Connects aborted above may sit in the backlog: skip them.)
  const after = new AbortController();
  const conn = await connect({ cid: 1, port, signal: after.signal });
  after.abort(reason);
  for (;;) {
    const peer = await withTimeout(listener.accept(), PROMPT, "accept hung");
    if (peer.remoteAddr.port !== conn.localAddr.port) {
      await drainToEnd(peer, "an aborted connect's server end");
      peer.close();
      continue;
    }
    await conn.writeAll(new Uint8Array([5]));
    assert.equal(await peer.read(new Uint8Array(1)), 1);
    peer.close();
    break;
  }
  conn.close();
  listener.close();
  // fetch: while the server holds the head, and while the body streams.
  let release = (): void => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const server = serve({ onListen: () => {} }, async (req) => {
    if (new URL(req.url).pathname === "/hold") await held;
    let n = 0;
    return new Response(
      new ReadableStream({
        async pull(controller) {
          await sleep(20);
          controller.enqueue(new Uint8Array(1000));
          if (++n > 1000) controller.close();
        },
      }),
    );
  });
  const client = createHttpClient({ cid: 1, port: server.addr.port });
  const atHead = new AbortController();
  const waiting = client.fetch("/hold", { signal: atHead.signal });
  await sleep(200);
  atHead.abort(reason);
  await withTimeout(assert.rejects(waiting, (e) => e === reason), PROMPT, "fetch hung after abort at the head");
  release();
  const inBody = new AbortController();
  const res = await client.fetch("/stream", { signal: inBody.signal });
  const reader = res.body!.getReader();
  await reader.read();
  inBody.abort(reason);
  await withTimeout(
    (async () => {
      try {
        while (!(await reader.read()).done) { /* until the abort lands */ }
        assert.fail("the body ended normally after abort");
      } catch (error) {
        assert.equal(error, reason);
      }
    })(),
    PROMPT,
    "body read hung after abort",
  );
  client.close();
  await withTimeout(server.shutdown(), PROMPT, "shutdown hung after the aborted requests");
  await nextConnectionWorks();
  await nothingLeaked(fds, registered);
});

/** Our runtime, on a script, with the flags it needs to expose gc(). */
function runtimeCommand(script: string, ...args: string[]): string {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const words = RUNTIME === "bun"
    ? [BUN, script]
    : RUNTIME === "deno"
    ? [DENO, "run", "--allow-all", "--v8-flags=--expose-gc", script]
    : [NODE, ...NODE_ARGS, "--expose-gc", script];
  return [...words, ...args].map(q).join(" ");
}

test(`fd exhaustion on ${RUNTIME} (ulimit -n 96): connect and accept report EMFILE, nothing half-registered, the accept loop serves once fds are free`, async () => {
  const child = new Peer("sh", [
    "-c",
    `ulimit -n 96 && exec ${runtimeCommand(`${ROOT}test/peers/fault_child.ts`, "emfile")}`,
  ]);
  try {
    const out = await child.done(120_000).catch((e) => assert.fail(`${e}\nsignal: ${child.proc.signalCode}`));
    assert.match(
      out,
      /connect EMFILE\naccept EMFILE\nno half registration\naccept loop served 2 after fds freed\nok\n/,
    );
  } finally {
    child.kill();
  }
});

test(`GC pressure on ${RUNTIME}: 100 transfers of 100 KB echoed while collections run in a loop, checksums intact`, async () => {
  const child = new Peer("sh", ["-c", `exec ${runtimeCommand(`${ROOT}test/peers/fault_child.ts`, "gc")}`]);
  try {
    const out = await child.done(180_000).catch((e) => assert.fail(`${e}\nsignal: ${child.proc.signalCode}`));
    assert.match(out, /100 transfers intact across at least 10 collections each\nok\n/);
  } finally {
    child.kill();
  }
});
