/**
 * Property-based tests (fast-check) over everything that parses outside
 * input: address strings and bytes, options objects, a VMM's hybrid
 * handshake reply, and HTTP requests. Whatever the input, only the
 * documented TypeError, RangeError or VsockError may escape — never another
 * error, a crash or a hang — and what parses round-trips.
 *
 * No vsock traffic: connect() is only given an aborted signal (it must fail
 * before a socket exists), listen() binds the any-CID/any-port address on
 * this machine, and the hybrid and HTTP cases run over Unix sockets.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { connect as netConnect } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { connect, HybridAddr, listen, VsockAddr, VsockError } from "../../mod.ts";
import { serve } from "../../http.ts";
import { parseHybridConnect } from "../../src/hybrid/connect.ts";
import {
  LITTLE_ENDIAN,
  readI32,
  readI64,
  readU16,
  readU32,
  readU64,
  writeU16,
  writeU32,
  writeU64,
} from "../../src/host_order.ts";
import { openFds, withTimeout } from "../helpers.ts";

/** Runs `f`; an error other than the documented three fails the property. */
function onlyDocumentedErrors<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (error) {
    assertDocumented(error);
    return undefined;
  }
}

function assertDocumented(error: unknown): void {
  assert.ok(
    error instanceof TypeError || error instanceof RangeError || error instanceof VsockError,
    `undocumented error: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
  );
  // The message must say something: an empty one helps nobody.
  assert.ok((error as Error).message.length > 10, `terse message: ${(error as Error).message}`);
}

/** Strings that look like vsock addresses, with mistakes mixed in. */
const addressLike: fc.Arbitrary<string> = fc.tuple(
  fc.constantFrom("", "vsock://", "VSOCK://", " vsock://", "unix://", "vsock:"),
  fc.oneof(
    fc.constantFrom("*", "any", "local", "host", "hypervisor", "HOST", "-1", "", "0x10", "1e3", "4294967296"),
    fc.nat().map(String),
    fc.bigInt({ min: 0n, max: 2n ** 40n }).map(String),
    fc.string({ maxLength: 6 }),
  ),
  fc.constantFrom(":", "::", "", ";"),
  fc.oneof(fc.constantFrom("*", "any", "", "65536", "4294967295", "4294967296"), fc.nat().map(String), fc.string()),
  fc.constantFrom("", "?to_host", "?to_host=0", "?to_host=true&", "?x=1", "?", "#frag", " "),
).map((parts) => parts.join(""));

test("VsockAddr.parse: any string gives an address that round-trips, or a TypeError/RangeError", () => {
  fc.assert(
    fc.property(fc.oneof(addressLike, fc.string(), fc.string({ unit: "binary" })), (text) => {
      const addr = onlyDocumentedErrors(() => VsockAddr.parse(text));
      if (addr === undefined) return;
      assert.ok(addr.equals(VsockAddr.parse(addr.toString())), `${text} -> ${addr} does not parse back`);
      assert.ok(VsockAddr.fromBytes(addr.toBytes()).equals(addr));
    }),
    { numRuns: 3000 },
  );
  // Valid input always parses, to the numbers given.
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.boolean(), (cid, port, toHost) => {
      const addr = VsockAddr.parse(`vsock://${cid}:${port}${toHost ? "?to_host" : ""}`);
      assert.deepEqual([addr.cid, addr.port, addr.toHost], [cid, port, toHost]);
    }),
  );
});

test("VsockAddr.parse and new VsockAddr: non-strings and non-integers are a TypeError/RangeError", () => {
  fc.assert(
    fc.property(fc.anything(), fc.anything(), fc.anything(), (a, b, c) => {
      onlyDocumentedErrors(() => VsockAddr.parse(a as string));
      const addr = onlyDocumentedErrors(() => new VsockAddr(a as number, b as number, c as boolean));
      if (addr) assert.ok(VsockAddr.fromBytes(addr.toBytes()).equals(addr));
    }),
    { numRuns: 2000 },
  );
});

test("VsockAddr.fromBytes: any bytes give an address that packs back, or a TypeError/RangeError", () => {
  const family = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => (b[0] = 40, b[1] = 0, b));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 40 }), family), fc.nat({ max: 8 }), (bytes, offset) => {
      // Also at an offset inside a bigger buffer, as accept4 and getsockname hand it over.
      const big = new Uint8Array(bytes.byteLength + offset);
      big.set(bytes, offset);
      const addr = onlyDocumentedErrors(() => VsockAddr.fromBytes(big.subarray(offset)));
      if (addr === undefined) return;
      const back = addr.toBytes();
      // family, port and CID come back; svm_reserved1 (bytes 2-3) is written as zero.
      assert.deepEqual([...back.subarray(0, 2), ...back.subarray(4, 12)], [
        ...bytes.subarray(0, 2),
        ...bytes.subarray(4, 12),
      ]);
      assert.equal(back[12] & 1, bytes[12] & 1);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.anything(), (value) => void onlyDocumentedErrors(() => VsockAddr.fromBytes(value as Uint8Array))),
  );
});

test("host byte order: the kernel-integer readers and writers agree with a DataView in this host's order", () => {
  const host = LITTLE_ENDIAN;
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 24, maxLength: 24 }),
      fc.nat({ max: 8 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.maxSafeNat(),
      (bytes, at, u32, u64) => {
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        assert.equal(readU16(bytes, at), view.getUint16(at, host));
        assert.equal(readU32(bytes, at), view.getUint32(at, host));
        assert.equal(readI32(bytes, at), view.getInt32(at, host));
        assert.equal(readU64(bytes, at), Number(view.getBigUint64(at, host)));
        assert.equal(readI64(bytes, at), Number(view.getBigInt64(at, host)));
        const mine = new Uint8Array(24), theirs = new DataView(new ArrayBuffer(24));
        writeU16(mine, at, u32 & 0xffff), theirs.setUint16(at, u32 & 0xffff, host);
        writeU32(mine, at + 2, u32), theirs.setUint32(at + 2, u32, host);
        writeU64(mine, at + 8, u64), theirs.setBigUint64(at + 8, BigInt(u64), host);
        assert.deepEqual(mine, new Uint8Array(theirs.buffer));
        // A negative int is written as its two's complement, as C stores it.
        writeU32(mine, at, -u32 | 0), theirs.setInt32(at, -u32 | 0, host);
        assert.deepEqual(mine, new Uint8Array(theirs.buffer));
      },
    ),
    { numRuns: 3000 },
  );
});

test("HybridAddr.parse: any string gives an address that round-trips, or a TypeError/RangeError", () => {
  const unixLike = fc.tuple(
    fc.constantFrom("unix://", "unix:", "UNIX://", "unix:///", ""),
    fc.oneof(fc.constantFrom("/run/v.sock", "run/v.sock", "/a%20b", "/%", "/%zz", "/a\u0000b", ""), fc.string()),
    fc.constantFrom("?port=", "?port=1&port=2", "?", "?x=", "#", ""),
    fc.oneof(fc.nat().map(String), fc.constantFrom("", "-1", "4294967296", "x")),
  ).map((parts) => parts.join(""));
  fc.assert(
    fc.property(fc.oneof(unixLike, fc.string(), fc.anything()), (text) => {
      const addr = onlyDocumentedErrors(() => HybridAddr.parse(text as string));
      if (addr === undefined) return;
      assert.ok(addr.equals(HybridAddr.parse(addr.toString())), `${String(text)} -> ${addr} does not parse back`);
    }),
    { numRuns: 3000 },
  );
});

/** Values an options field might be given by mistake, and some right ones. */
const optionValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything(),
  fc.integer(),
  fc.double(),
  fc.nat({ max: 2 ** 32 }),
  fc.constantFrom(-1, 0, 1, 2 ** 53, NaN, Infinity, "1", "stream", "seqpacket", true, null),
);

const optionKeys = [
  "cid",
  "port",
  "toHost",
  "timeout",
  "type",
  "backlog",
  "bufferSize",
  "bufferMinSize",
  "bufferMaxSize",
  "connectTimeout",
  "receiveBufferSize",
  "sendBufferSize",
  "keepAlive",
  "handshakeTimeout",
  "retries",
] as const;

const optionsObject = fc.dictionary(fc.constantFrom(...optionKeys), optionValue, { maxKeys: 6 });

test("connect(options): bad options reject with TypeError/RangeError before any socket exists", async () => {
  const aborted = new AbortController();
  const reason = new Error("aborted on purpose: no socket may be made");
  aborted.abort(reason);
  await fc.assert(
    fc.asyncProperty(fc.oneof(optionsObject, fc.anything().filter((v) => typeof v !== "string")), async (options) => {
      // With the signal aborted, valid options end at the abort, before socket(): nothing is ever dialed.
      const given = typeof options === "object" && options !== null && !Array.isArray(options)
        ? { ...options, signal: aborted.signal }
        : options;
      try {
        const conn = await connect(given as Parameters<typeof connect>[0]);
        conn.close();
        assert.fail(`connect(${String(given)}) resolved`);
      } catch (error) {
        if (error !== reason) assertDocumented(error);
      }
    }),
    { numRuns: 2000 },
  );
});

test("hybrid connect options: a TypeError/RangeError, or parsed to what was given", () => {
  fc.assert(
    fc.property(
      optionsObject,
      fc.oneof(fc.constant("/run/vm/v.sock"), fc.string(), fc.anything()),
      (options, uds) => {
        const parsed = onlyDocumentedErrors(() =>
          parseHybridConnect({ ...options, uds } as Parameters<typeof parseHybridConnect>[0])
        );
        if (parsed === undefined) return;
        assert.equal(parsed.address.port, (options as { port?: unknown }).port);
        assert.ok(Number.isInteger(parsed.retries) && parsed.retries >= 0);
      },
    ),
    { numRuns: 2000 },
  );
});

test("listen(options) on any CID and port: a listener or a TypeError/RangeError/VsockError, never a leaked fd", () => {
  listen().close(); // the reactor's own fds exist from here on
  const fds = openFds();
  fc.assert(
    fc.property(optionsObject, (options) => {
      // Only this machine's any-CID, any-port address is ever bound.
      const given = { ...options, cid: undefined, port: undefined };
      const listener = onlyDocumentedErrors(() => listen(given as unknown as Parameters<typeof listen>[0]));
      if (listener === undefined) return;
      listener.close();
      assert.ok("type" in listener && ["stream", "seqpacket"].includes(listener.type));
    }),
    { numRuns: 300 },
  );
  assert.equal(openFds(), fds);
});

/** A fake VMM that answers every CONNECT with `reply`, then closes or stays silent. */
async function fakeVmm(): Promise<{
  path: string;
  next(reply: Uint8Array<ArrayBuffer>, close: boolean): void;
  close(): Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), "props-"));
  const path = join(dir, "v.sock");
  let reply: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  let hangUp = true;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.once("data", () => {
      if (reply.byteLength > 0) socket.write(reply);
      if (hangUp) socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    next(r, close) {
      reply = r;
      hangUp = close;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test("hybrid handshake: any reply from the VMM gives a connection or a VsockError, within the timeout", async () => {
  const vmm = await fakeVmm();
  const replies = fc.oneof(
    fc.uint8Array({ maxLength: 80 }),
    fc.tuple(
      fc.constantFrom("OK ", "OK", "ok ", "ERR ", "OK 1073741824", ""),
      fc.string({ maxLength: 40 }),
      fc.constantFrom("\n", "", "\r\n"),
    )
      .map(([a, b, c]) => new TextEncoder().encode(a + b + c)),
    fc.string({ unit: "binary", maxLength: 20 }).map((s) => new TextEncoder().encode(`OK ${s}\n`)),
  );
  try {
    await fc.assert(
      fc.asyncProperty(replies, fc.boolean(), async (reply, close) => {
        vmm.next(reply, close);
        try {
          const conn = await withTimeout(
            connect({ uds: vmm.path, port: 52, handshakeTimeout: 150 }),
            5000,
            "the handshake hung",
          );
          const text = new TextDecoder().decode(reply);
          assert.ok(text.startsWith("OK ") && text.includes("\n"), `accepted the reply ${JSON.stringify(text)}`);
          conn.close();
        } catch (error) {
          assert.ok(error instanceof VsockError, `not a VsockError: ${String(error)}`);
          assert.ok(["EPROTO", "ECONNRESET", "ETIMEDOUT", "EPIPE"].includes(error.code), error.message);
        }
      }),
      { numRuns: 150 },
    );
  } finally {
    await vmm.close();
  }
});

/** Sends `bytes` on a fresh Unix connection, half-closes, and returns all that comes back before the close. */
function exchange(path: string, bytes: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    const socket = netConnect(path, () => socket.end(bytes));
    socket.on("data", (d: Uint8Array) => chunks.push(d));
    socket.on(
      "error",
      (e: NodeJS.ErrnoException) => e.code === "ECONNRESET" || e.code === "EPIPE" ? undefined : reject(e),
    );
    socket.on("close", () => resolve(new TextDecoder().decode(Buffer.concat(chunks))));
  });
}

test("HTTP server: any request bytes get a response or a closed connection, and the server keeps serving", async () => {
  const dir = mkdtempSync(join(tmpdir(), "props-http-"));
  const uds = join(dir, "v.sock");
  const server = serve({
    listener: listen({ uds, port: 80 }),
    onListen: () => {},
    onError: () => new Response("handler failed", { status: 500 }),
  }, async (req) => {
    const body = await req.arrayBuffer();
    return new Response(`${req.method} ${new URL(req.url).pathname} ${body.byteLength}`);
  });
  const path = `${uds}_80`;
  const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/);
  const requestLike = fc.tuple(
    fc.oneof(fc.constantFrom("GET", "POST", "PUT", "HEAD", "DELETE", "CONNECT", "get", ""), token),
    fc.oneof(fc.constantFrom("/", "/a?b=c", "*", "http://x/y", "//", "/%", "/\u00ff"), fc.string({ maxLength: 30 })),
    fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "", "http/1.1"),
    fc.array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom("Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect"),
          token,
          fc.string({ maxLength: 10 }),
        ),
        fc.oneof(
          fc.constantFrom("0", "5", "-1", "chunked", "close", "100-continue", "99999999999999999999", ""),
          fc.string({ maxLength: 20 }),
        ),
      ),
      { maxLength: 5 },
    ),
    fc.constantFrom("\r\n", "\n", "\r"),
    fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("5\r\nhello\r\n0\r\n\r\n", "zz\r\n", "")),
  ).map(([method, target, version, headers, eol, body]) =>
    new TextEncoder().encode(
      `${method} ${target} ${version}${eol}${headers.map(([k, v]) => `${k}: ${v}${eol}`).join("")}${eol}${body}`,
    )
  );
  try {
    await fc.assert(
      fc.asyncProperty(fc.oneof(requestLike, fc.uint8Array({ maxLength: 200 })), async (bytes) => {
        const answer = await withTimeout(exchange(path, bytes), 10_000, "the server neither answered nor closed");
        if (answer !== "") {
          assert.match(answer, /^HTTP\/1\.[01] \d{3}/, `answered ${JSON.stringify(answer.slice(0, 80))}`);
        }
      }),
      { numRuns: 300 },
    );
    // Still serving.
    const ok = await exchange(
      path,
      new TextEncoder().encode("GET /still HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert.match(ok, /^HTTP\/1\.1 200 [^]*GET \/still 0$/);
  } finally {
    await withTimeout(server.shutdown(), 10_000, "shutdown hung");
    rmSync(dir, { recursive: true, force: true });
  }
});
