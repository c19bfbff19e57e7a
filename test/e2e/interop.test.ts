/**
 * Interop over real AF_VSOCK CID 1 with peers nobody here wrote: socat,
 * python3's socket.AF_VSOCK, Deno's own --unstable-vsock sockets, and the
 * other two runtimes running this library.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, listen, type VsockListener } from "../../mod.ts";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collect, pattern, sha256 } from "./data.ts";
import { DENO, freePort, OTHERS, Peer, runOn } from "./procs.ts";
import { RUNTIME } from "../helpers.ts";

const MiB = 1024 * 1024;
const SIZE = MiB + 12345;
const EXPECTED = `${SIZE} ${sha256(pattern(SIZE))}`;

/** Our client: send SIZE pattern bytes to an echo server, half-close, hash what comes back. */
async function echoThrough(port: number): Promise<string> {
  using conn = await connect({ cid: 1, port });
  const sending = conn.writeAll(pattern(SIZE)).then(() => conn.closeWrite());
  const received = await collect(conn.readable);
  await sending;
  return `${received.length} ${sha256(received)}`;
}

/** Our server: echo every connection until EOF. */
function serveEcho(listener: VsockListener): Promise<void> {
  return (async () => {
    for await (const conn of listener) {
      (async () => {
        await conn.readable.pipeTo(conn.writable);
        conn.close();
      })().catch(() => conn.close());
    }
  })();
}

async function withOurServer(run: (port: number) => Promise<void>): Promise<void> {
  const listener = listen();
  const serving = serveEcho(listener);
  try {
    await run(listener.addr.port);
  } finally {
    listener.close();
    await serving;
  }
}

test("our client -> socat VSOCK-LISTEN echo server", async () => {
  const port = await freePort();
  // -t 30: socat's default 0.5 s after our half-close cut the echo short in a slow VM.
  const socat = new Peer("socat", ["-t", "30", `VSOCK-LISTEN:${port},reuseaddr,fork`, "EXEC:cat"]);
  try {
    // socat prints nothing when ready; retry the connect until it listens.
    let result: string | undefined;
    for (let i = 0; i < 100 && result === undefined; i++) {
      result = await echoThrough(port).catch((e) => {
        if (e.code !== "ECONNRESET") throw e;
        return new Promise<undefined>((r) => setTimeout(r, 100));
      });
    }
    assert.equal(result, EXPECTED);
  } finally {
    socat.kill();
  }
});

test("our client -> python3 AF_VSOCK echo server", async () => {
  const py = new Peer("python3", ["test/peers/py_peer.py", "echo-server"]);
  try {
    const [, port] = await py.match(/ready (\d+)/);
    assert.equal(await echoThrough(Number(port)), EXPECTED);
  } finally {
    py.kill();
  }
});

test("our server <- socat VSOCK-CONNECT client", async () => {
  const dir = mkdtempSync(join(tmpdir(), "vsock-socat-"));
  try {
    writeFileSync(join(dir, "in"), pattern(SIZE));
    await withOurServer(async (port) => {
      const socat = new Peer("sh", ["-c", `socat -t 30 - VSOCK-CONNECT:1:${port} < ${dir}/in > ${dir}/out`]);
      await socat.done();
    });
    const out = new Uint8Array(readFileSync(join(dir, "out")));
    assert.equal(`${out.length} ${sha256(out)}`, EXPECTED);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("our server <- python3 AF_VSOCK client", async () => {
  await withOurServer(async (port) => {
    const out = await new Peer("python3", ["test/peers/py_peer.py", "client", "1", String(port), String(SIZE)]).done();
    assert.equal(out.trim(), EXPECTED);
  });
});

test("our server <- Deno's native --unstable-vsock client", async () => {
  await withOurServer(async (port) => {
    const out = await new Peer(DENO, [
      "run",
      "--unstable-vsock",
      "--allow-net",
      "--allow-read",
      "test/peers/deno_native_client.ts",
      "1",
      String(port),
      String(SIZE),
    ]).done();
    assert.equal(out.trim(), EXPECTED);
  });
});

for (const other of OTHERS) {
  test(`our server <- this library's client on ${other}`, async () => {
    await withOurServer(async (port) => {
      const client = runOn(other, "examples/echo_client.ts", `vsock://1:${port}`, "--bytes", String(SIZE));
      const out = await new Peer(...client).done();
      const [bytes, sent, received] = out.trim().split(" ");
      assert.equal(Number(bytes), SIZE);
      assert.match(sent, /^[0-9a-f]{64}$/);
      assert.equal(received, sent, "the echo differs from what the client sent");
    });
  });

  test(`our client -> this library's server on ${other}`, async () => {
    const server = new Peer(...runOn(other, "examples/echo_server.ts"));
    try {
      const [, port] = await server.match(/listening vsock:\/\/\*:(\d+)/);
      assert.equal(await echoThrough(Number(port)), EXPECTED);
      await server.match(/echoed \d+ bytes/);
      assert.match(server.stdout, new RegExp(`echoed ${SIZE} bytes to vsock://1:`));
    } finally {
      server.kill();
    }
  });
}

test("the README's echo example runs as written on this runtime", async () => {
  // As the README runs it: Deno with only --allow-ffi, Node with its warning showing.
  const [command, args] = RUNTIME === "deno"
    ? [DENO, ["run", "--allow-ffi", "examples/readme_echo.ts"]]
    : runOn(RUNTIME, "examples/readme_echo.ts");
  assert.equal((await new Peer(command, args).done()).trim(), "hello vsock");
});
