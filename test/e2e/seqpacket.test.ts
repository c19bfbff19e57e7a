/** SOCK_SEQPACKET over real vsock CID 1: our both ends, and python3's socket.AF_VSOCK as the peer. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, listen, type VsockSeqpacketConn } from "../../mod.ts";
import { sleep, withTimeout } from "../helpers.ts";
import { pattern, sha256 } from "./data.ts";
import { Peer } from "./procs.ts";

async function pair(
  bufferSize?: number,
): Promise<{ client: VsockSeqpacketConn; server: VsockSeqpacketConn; close(): void }> {
  const listener = listen({ type: "seqpacket", bufferSize });
  const [client, server] = await Promise.all([
    connect({ cid: 1, port: listener.addr.port, type: "seqpacket" }),
    listener.accept(),
  ]);
  listener.close();
  return { client, server, close: () => (client.close(), server.close()) };
}

test("one send is one receive, for sizes from 1 byte to the whole buffer", async () => {
  const { client, server, close } = await pair();
  try {
    const sizes = [1, 2, 100, 4096, 4097, 65535, 65536, 65537, 200_000, 256 * 1024];
    const sending = (async () => {
      for (const size of sizes) await client.send(pattern(size));
      await client.closeWrite();
    })();
    const got: number[] = [];
    for await (const message of server) {
      assert.equal(sha256(message), sha256(pattern(message.length)), `message ${got.length} corrupted`);
      got.push(message.length);
    }
    await sending;
    assert.deepEqual(got, sizes);
  } finally {
    close();
  }
});

test("boundaries survive a slow reader and a full peer buffer (300 messages)", async () => {
  const { client, server, close } = await pair(64 * 1024); // small window: sends must wait often
  try {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const sizes = Array.from({ length: 300 }, () => 1 + Math.floor(random() * 40_000));
    const sending = (async () => {
      for (const [i, size] of sizes.entries()) {
        const message = pattern(size + 4).slice(4);
        new DataView(message.buffer).setUint32(0, i); // sequence number in the first bytes
        await client.send(message);
      }
      await client.closeWrite();
    })();
    let i = 0;
    for await (const message of server) {
      assert.equal(message.length, sizes[i], `message ${i}: length`);
      assert.equal(new DataView(message.buffer).getUint32(0), i, `message ${i}: sequence`);
      if (i % 25 === 0) await sleep(30); // let the sender run into a full window
      i++;
    }
    await sending;
    assert.equal(i, sizes.length);
  } finally {
    close();
  }
});

test("a message larger than the peer's buffer fails with EMSGSIZE and sends nothing", async () => {
  const { client, server, close } = await pair(16 * 1024);
  try {
    // (Linux before 6.5 says ENOMEM here; the library reports EMSGSIZE either way.)
    await assert.rejects(client.send(new Uint8Array(16 * 1024 + 1)), {
      code: "EMSGSIZE",
      message: /larger than the peer's vsock buffer/,
    });
    await assert.rejects(client.send(new Uint8Array(0)), RangeError);
    await client.send(new Uint8Array([42]));
    assert.deepEqual([...(await server.receive())!], [42]);
  } finally {
    close();
  }
});

test("close during a pending receive resolves it with null; later calls fail clearly", async () => {
  const { client, server, close } = await pair();
  try {
    const pending = server.receive();
    await sleep(20);
    server.close();
    assert.equal(await withTimeout(pending, 2000, "receive stayed pending"), null);
    await assert.rejects(server.receive(), { code: "EBADF" });
    await assert.rejects(server.send(new Uint8Array(1)), { code: "EBADF" });
    assert.equal(await withTimeout(client.receive(), 5000, "peer saw no EOF"), null);
  } finally {
    close();
  }
});

test("our seqpacket client <-> python3 SOCK_SEQPACKET echo server", async () => {
  const py = new Peer("python3", ["test/peers/py_peer.py", "seq-echo-server"]);
  try {
    const [, port] = await py.match(/ready (\d+)/);
    using conn = await connect({ cid: 1, port: Number(port), type: "seqpacket" });
    for (const size of [1, 1000, 65536, 100_000]) {
      await conn.send(pattern(size));
      const echo = await conn.receive();
      assert.equal(echo?.length, size);
      assert.equal(sha256(echo!), sha256(pattern(size)));
    }
  } finally {
    py.kill();
  }
});

test("python3 SOCK_SEQPACKET client -> our seqpacket server", async () => {
  using listener = listen({ type: "seqpacket" });
  const serving = (async () => {
    using conn = await listener.accept();
    for await (const message of conn) await conn.send(message);
  })();
  const sizes = [3, 5000, 70000];
  const out = await new Peer("python3", [
    "test/peers/py_peer.py",
    "seq-client",
    "1",
    String(listener.addr.port),
    ...sizes.map(String),
  ]).done();
  assert.deepEqual(out.trim().split("\n"), sizes.map((size) => `${size} ${sha256(pattern(size))}`));
  await serving;
});

test("close() unblocks a send waiting on a peer that never reads", async () => {
  const { client, server, close } = await pair(16 * 1024);
  try {
    // Fill the peer's 16 KiB window, then one more send must wait in the kernel.
    for (let i = 0; i < 4; i++) await client.send(new Uint8Array(4096));
    const blocked = client.send(new Uint8Array(4096));
    await sleep(100);
    client.close();
    await assert.rejects(withTimeout(blocked, 5000, "send stayed blocked after close"), { code: "EBADF" });
    assert.equal((await server.receive())?.length, 4096);
  } finally {
    close();
  }
});
