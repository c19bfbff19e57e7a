/**
 * The Bun adapter. Syscalls go through `bun:ffi` on the JS thread; stream
 * sockets are adopted into Bun's own event loop (`Bun.connect({ fd })`), which
 * measured as fast as Bun's native sockets, connected or with their connect
 * still under way; the reactor's single `epoll_wait` (accept, message sockets)
 * runs in a Worker.
 *
 * @module
 */
/// <reference types="bun-types" />
import { dlopen, FFIType, toArrayBuffer } from "bun:ffi";
import { adoptBunStream, adoptConnectingBunStream } from "./bun_stream.ts";
import { adoptNetSocket } from "./bun_net.ts";
import { createBunSender } from "./bun_sender.ts";
import { createBunEpollWaiter } from "./bun_waiter.ts";
import { type CType, LIBC_PATH, SYMBOLS } from "./symbols.ts";
import { libcCalls, type LibcFunctions } from "./libc_calls.ts";
import type { Adapter, EpollWaiter } from "./types.ts";

const NATIVE: Record<CType, FFIType> = {
  i32: FFIType.i32,
  u32: FFIType.u32,
  u64: FFIType.u64,
  usize: FFIType.u64,
  isize: FFIType.i64_fast,
  ptr: FFIType.ptr,
};

interface BunSymbols extends LibcFunctions<number> {
  __errno_location(): number | null;
}

/** Opens libc with `bun:ffi` and returns the adapter. */
export function createBunAdapter(): Adapter {
  const table: Record<string, { args: FFIType[]; returns: FFIType }> = {};
  for (const [name, spec] of Object.entries(SYMBOLS)) {
    table[name] = { args: spec.args.map((t) => NATIVE[t]), returns: NATIVE[spec.returns] };
  }
  const s = dlopen(LIBC_PATH, table).symbols as unknown as BunSymbols;
  const errnoPtr = s.__errno_location();
  if (errnoPtr === null) throw new Error("libc returned no errno location");
  // A view over this thread's errno, made once: errno's address is fixed per
  // thread, and every synchronous call runs on this one. (Binding `errno`
  // itself crashes Bun.) Typed arrays are passed to calls directly: ptr() of
  // a small typed array must not be cached, its storage can move.
  const errno = new Int32Array(toArrayBuffer(errnoPtr, 0, 4));
  const libc = libcCalls(s, errno, (n) => n);

  const epollEventSize = process.arch === "x64" ? 12 : 16;
  return {
    runtime: "bun",
    libc,
    epollEventSize,
    createEpollWaiter: (epfd: number, maxEvents: number): EpollWaiter =>
      createBunEpollWaiter(epfd, maxEvents, epollEventSize),
    adoptStream: adoptBunStream,
    adoptConnecting: adoptConnectingBunStream,
    adoptNetSocket: adoptNetSocket,
    maxSendsInFlight: 4,
    sendOffThread: createBunSender(4),
  };
}
