/**
 * Stream sockets over a real kernel's AF_VSOCK, CID 1 (vsock_loopback):
 * this library on both ends, in one process.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  connect,
  listen,
  VMADDR_CID_ANY,
  VMADDR_CID_LOCAL,
  VMADDR_PORT_ANY,
  VsockAddr,
  type VsockConn,
  VsockError,
} from "../../mod.ts";
import { eventually, openFds, sleep, withTimeout } from "../helpers.ts";
import { collect, concat, pattern, sha256, streamOf } from "./data.ts";

const MiB = 1024 * 1024;

async function readAll(conn: VsockConn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(100_000); // odd size: reads straddle the writer's chunks
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) chunks.push(buf.slice(0, n));
  return concat(chunks);
}

async function pair(): Promise<{ client: VsockConn; server: VsockConn; close(): void }> {
  const listener = listen();
  const [client, server] = await Promise.all([
    connect({ cid: VMADDR_CID_LOCAL, port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  return { client, server, close: () => (client.close(), server.close()) };
}

test("1 MiB each way between our client and our server, hash-checked", async () => {
  const { client, server, close } = await pair();
  try {
    const up = pattern(MiB);
    const down = pattern(MiB + 17).subarray(17);
    const [atServer, atClient] = await Promise.all([
      readAll(server),
      readAll(client),
      client.writeAll(up).then(() => client.closeWrite()),
      server.writeAll(down).then(() => server.closeWrite()),
    ]);
    assert.equal(atServer.length, MiB);
    assert.equal(sha256(atServer), sha256(up));
    assert.equal(atClient.length, MiB);
    assert.equal(sha256(atClient), sha256(down));
  } finally {
    close();
  }
});

test("addresses are real on both ends (getsockname/getpeername)", async () => {
  const listener = listen();
  const client = await connect({ cid: 1, port: listener.addr.port });
  const server = await listener.accept();
  try {
    assert.ok(client.remoteAddr.equals(new VsockAddr(1, listener.addr.port)));
    assert.equal(server.localAddr.port, listener.addr.port);
    // The kernel leaves an outgoing socket's own CID as VMADDR_CID_ANY; the port is real.
    assert.ok([1, VMADDR_CID_ANY].includes(client.localAddr.cid), String(client.localAddr));
    assert.equal(server.remoteAddr.cid, 1);
    assert.equal(server.remoteAddr.port, client.localAddr.port);
    assert.notEqual(client.localAddr.port, VMADDR_PORT_ANY);
    assert.ok(server.localAddr.equals(client.remoteAddr));
  } finally {
    client.close();
    server.close();
    listener.close();
  }
});

test("half-close from the client: the server reads EOF and can still answer", async () => {
  const { client, server, close } = await pair();
  try {
    await client.writeAll(new TextEncoder().encode("question"));
    await client.closeWrite();
    assert.equal(new TextDecoder().decode(await readAll(server)), "question");
    await server.writeAll(new TextEncoder().encode("answer"));
    await server.closeWrite();
    assert.equal(new TextDecoder().decode(await readAll(client)), "answer");
    await assert.rejects(client.write(new Uint8Array(1)), { name: "VsockError", code: "EPIPE" });
  } finally {
    close();
  }
});

test("hasInput: true while sent bytes wait unread, false once read, consumes nothing; false at EOF and after close", async () => {
  const { client, server, close } = await pair();
  try {
    assert.equal(server.hasInput(), false);
    await client.writeAll(new TextEncoder().encode("waiting"));
    await eventually(() => server.hasInput(), 5000, "the bytes never showed as unread input");
    assert.equal(server.hasInput(), true); // asking twice takes nothing
    const buf = new Uint8Array(64);
    let got = "";
    while (got.length < 7) got += new TextDecoder().decode(buf.subarray(0, (await server.read(buf)) ?? 0));
    assert.equal(got, "waiting");
    assert.equal(server.hasInput(), false);
    await client.closeWrite();
    assert.equal(await server.read(buf), null);
    assert.equal(server.hasInput(), false);
    server.close();
    assert.equal(server.hasInput(), false);
  } finally {
    close();
  }
});

test("half-close from the server: the client reads EOF and can still send", async () => {
  const { client, server, close } = await pair();
  try {
    await server.closeWrite();
    assert.equal(await client.read(new Uint8Array(10)), null);
    await client.writeAll(new TextEncoder().encode("still here"));
    await client.closeWrite();
    assert.equal(new TextDecoder().decode(await readAll(server)), "still here");
  } finally {
    close();
  }
});

test("readable and writable streams: echo through pipeTo, 1 MiB hash-checked", async () => {
  const { client, server, close } = await pair();
  try {
    const echoing = server.readable.pipeTo(server.writable);
    const data = pattern(MiB);
    const sending = streamOf(data).pipeTo(client.writable);
    const received = await collect(client.readable);
    await sending;
    await echoing;
    assert.equal(sha256(received), sha256(data));
  } finally {
    close();
  }
});

test("writable applies backpressure: a peer that does not read stops the writer", async () => {
  const { client, server, close } = await pair();
  try {
    const writer = client.writable.getWriter();
    let accepted = 0;
    const chunk = new Uint8Array(64 * 1024);
    const pumping = (async () => {
      for (let i = 0; i < 1024; i++) { // up to 64 MiB
        await writer.ready;
        accepted += chunk.length;
        writer.write(chunk).catch(() => {});
      }
    })();
    await sleep(500);
    const stalledAt = accepted;
    assert.ok(stalledAt < 16 * MiB, `writer took ${stalledAt} bytes with nobody reading`);
    await sleep(200);
    assert.equal(accepted, stalledAt, "writer kept accepting while the peer did not read");
    // Now read: everything flows.
    let got = 0;
    const buf = new Uint8Array(256 * 1024);
    const reading = (async () => {
      for (let n = await server.read(buf); n !== null; n = await server.read(buf)) got += n;
    })();
    await pumping;
    await writer.close();
    await reading;
    assert.equal(got, 1024 * chunk.length);
  } finally {
    close();
  }
});

test("connecting where nothing listens rejects with ECONNRESET at once", async () => {
  const listener = listen();
  const port = listener.addr.port;
  listener.close();
  const before = openFds();
  const t0 = performance.now();
  await assert.rejects(connect({ cid: 1, port }), (error) => {
    assert.ok(error instanceof VsockError);
    assert.equal(error.code, "ECONNRESET");
    assert.equal(error.syscall, "connect");
    assert.equal(error.address?.port, port);
    assert.match(error.message, /nothing is listening/);
    return true;
  });
  assert.ok(performance.now() - t0 < 2000);
  assert.equal(openFds(), before);
});

test("a connect timeout longer than the connect does not fire", async () => {
  using listener = listen();
  const conn = await connect({ cid: 1, port: listener.addr.port, timeout: 5000 });
  using server = await listener.accept();
  await sleep(50);
  await conn.writeAll(new Uint8Array([7]));
  const buf = new Uint8Array(1);
  assert.equal(await server.read(buf), 1);
  conn.close();
});

test("close during a pending read resolves it with null; later calls fail clearly", async () => {
  const { client, server, close } = await pair();
  try {
    const pending = client.read(new Uint8Array(10));
    await sleep(20);
    client.close();
    assert.equal(await withTimeout(pending, 2000, "pending read not settled by close"), null);
    await assert.rejects(client.read(new Uint8Array(1)), {
      name: "VsockError",
      code: "EBADF",
      message: /closed vsock connection/,
    });
    await assert.rejects(client.write(new Uint8Array(1)), { name: "VsockError", code: "EBADF" });
    await assert.rejects(client.closeWrite(), { code: "EBADF" });
    client.close(); // second close: a no-op
    // The peer sees the end of the stream.
    assert.equal(await withTimeout(server.read(new Uint8Array(10)), 5000, "peer never saw EOF"), null);
  } finally {
    close();
  }
});

test("the peer closing during a pending read gives EOF", async () => {
  const { client, server, close } = await pair();
  try {
    const pending = client.read(new Uint8Array(10));
    await sleep(20);
    server.close();
    assert.equal(await withTimeout(pending, 5000, "EOF never arrived"), null);
  } finally {
    close();
  }
});

test("read and write take only Uint8Array", async () => {
  const { client, close } = await pair();
  try {
    await assert.rejects(client.read("x" as unknown as Uint8Array), TypeError);
    await assert.rejects(client.write([1, 2] as unknown as Uint8Array), TypeError);
    await assert.rejects(client.write(null as unknown as Uint8Array), TypeError);
    assert.equal(await client.write(new Uint8Array(0)), 0);
  } finally {
    close();
  }
});

test("1,000 connect/close cycles leave the fd count unchanged", async () => {
  using listener = listen();
  const before = openFds();
  for (let i = 0; i < 1000; i++) {
    const [client, server] = await Promise.all([connect({ cid: 1, port: listener.addr.port }), listener.accept()]);
    client.close();
    server.close();
  }
  await eventually(() => openFds() === before, 5000, `fd count back to ${before} (now ${openFds()})`);
});

test("1,000 concurrent idle connections, then every one still works", async () => {
  using listener = listen();
  const before = openFds();
  const N = 1000;
  const accepted: VsockConn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      accepted.push(conn);
      if (accepted.length === N) return;
    }
  })();
  const clients: VsockConn[] = [];
  for (let i = 0; i < N; i += 50) {
    clients.push(...await Promise.all(Array.from({ length: 50 }, () => connect({ cid: 1, port: listener.addr.port }))));
  }
  await withTimeout(accepting, 60_000, `only ${accepted.length} accepted`);
  assert.equal(accepted.length, N);
  assert.equal(openFds() - before, 2 * N);
  await sleep(200); // all idle at once
  // Each server end sends its index; each client echoes it back.
  const byPort = new Map(accepted.map((conn) => [conn.remoteAddr.port, conn]));
  await Promise.all(clients.map(async (client, i) => {
    const server = byPort.get(client.localAddr.port)!;
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, i);
    await server.writeAll(out);
    const buf = new Uint8Array(4);
    assert.equal(await client.read(buf), 4);
    await client.writeAll(buf);
    const back = new Uint8Array(4);
    assert.equal(await server.read(back), 4);
    assert.equal(new DataView(back.buffer).getUint32(0), i);
  }));
  for (const conn of [...clients, ...accepted]) conn.close();
  await eventually(() => openFds() === before, 5000, "fds released");
});
