import { test } from "node:test";
import assert from "node:assert/strict";
import type { ErrorFactory, Libc, StreamIO } from "../../ffi/mod.ts";
import { DeferredStream } from "../../src/deferred_stream.ts";
import { VsockError } from "../../src/errors.ts";

/** A libc that records close and shutdown; nothing else is called. */
function fakeLibc(): { libc: Libc; closed: number[]; shut: number[] } {
  const closed: number[] = [];
  const shut: number[] = [];
  const libc = {
    close: (fd: number) => (closed.push(fd), 0),
    shutdown: (fd: number) => (shut.push(fd), 0),
  } as unknown as Libc;
  return { libc, closed, shut };
}

/** An adopted stream that records what is called on it. */
function fakeStream(calls: string[]): StreamIO {
  let closed = false;
  return {
    read: () => (calls.push("read"), Promise.resolve(closed ? null : 3)),
    write: (from) => (calls.push("write"), Promise.resolve(from.byteLength)),
    closeWrite: () => void calls.push("closeWrite"),
    close: () => void (calls.push("close"), (closed = true)),
  };
}

const toError: ErrorFactory = (errno, syscall) => new VsockError({ errno, syscall });

test("deferred adoption: a stream closed before any I/O closes the fd itself and is never adopted", async () => {
  const { libc, closed } = fakeLibc();
  let adopted = 0;
  const stream = new DeferredStream(7, libc, () => (adopted++, Promise.resolve(fakeStream([]))), toError);
  stream.close();
  stream.close();
  assert.deepEqual(closed, [7]);
  assert.equal(adopted, 0);
  assert.equal(await stream.read(new Uint8Array(4)), null);
  await assert.rejects(stream.write(new Uint8Array(1)), (e: VsockError) => e.code === "EPIPE");
  assert.throws(() => stream.closeWrite(), (e: VsockError) => e.code === "EBADF");
});

test("deferred adoption: the first read or write adopts once, later calls go to the adopted stream", async () => {
  const { libc, closed } = fakeLibc();
  const calls: string[] = [];
  let adopted = 0;
  const stream = new DeferredStream(7, libc, () => (adopted++, Promise.resolve(fakeStream(calls))), toError);
  const [r, w] = await Promise.all([stream.read(new Uint8Array(4)), stream.write(new Uint8Array(2))]);
  assert.equal(r, 3);
  assert.equal(w, 2);
  stream.closeWrite();
  stream.close();
  assert.equal(adopted, 1);
  assert.deepEqual(calls, ["read", "write", "closeWrite", "close"]);
  assert.deepEqual(closed, [], "the adopted stream owns the fd");
});

test("deferred adoption: half-close before adoption is a plain shutdown", () => {
  const { libc, shut } = fakeLibc();
  const stream = new DeferredStream(7, libc, () => Promise.resolve(fakeStream([])), toError);
  stream.closeWrite();
  assert.deepEqual(shut, [7]);
  stream.close();
});

test("deferred adoption: close during the adoption closes the adopted stream; a pending read ends", async () => {
  const { libc, closed } = fakeLibc();
  const calls: string[] = [];
  let land: (io: StreamIO) => void = () => {};
  const stream = new DeferredStream(7, libc, () => new Promise<StreamIO>((r) => (land = r)), toError);
  const read = stream.read(new Uint8Array(4));
  stream.close();
  land(fakeStream(calls));
  assert.equal(await read, null);
  assert.deepEqual(calls, ["close", "read"]);
  assert.deepEqual(closed, []);
});

test("deferred adoption: a failed adoption closes the fd and rejects the call that asked", async () => {
  const { libc, closed } = fakeLibc();
  const stream = new DeferredStream(7, libc, () => Promise.reject(new Error("no")), toError);
  await assert.rejects(stream.read(new Uint8Array(4)), /no/);
  assert.deepEqual(closed, [7]);
  stream.close();
  assert.deepEqual(closed, [7], "closed once");
});
