/**
 * The Bun adapter. Syscalls go through `bun:ffi` on the JS thread; connected
 * streams are adopted into Bun's own event loop (`Bun.connect({ fd })`),
 * which measured as fast as Bun's native sockets; the reactor's single
 * `epoll_wait` (connect completion, accept) runs in a Worker.
 *
 * @module
 */
/// <reference types="bun-types" />
import { dlopen, FFIType, toArrayBuffer } from "bun:ffi";
import { adoptBunStream } from "./bun_stream.ts";
import { createBunSender } from "./bun_sender.ts";
import { createBunEpollWaiter } from "./bun_waiter.ts";
import { type CType, LIBC_PATH, SYMBOLS } from "./symbols.ts";
import type { Adapter, EpollWaiter, Libc } from "./types.ts";

const NATIVE: Record<CType, FFIType> = {
  i32: FFIType.i32,
  u32: FFIType.u32,
  u64: FFIType.u64,
  usize: FFIType.u64,
  isize: FFIType.i64_fast,
  ptr: FFIType.ptr,
};

interface BunSymbols {
  socket(d: number, t: number, p: number): number;
  bind(fd: number, a: Uint8Array, l: number): number;
  connect(fd: number, a: Uint8Array, l: number): number;
  listen(fd: number, b: number): number;
  accept4(fd: number, a: Uint8Array, l: Uint32Array, f: number): number;
  getsockname(fd: number, a: Uint8Array, l: Uint32Array): number;
  getpeername(fd: number, a: Uint8Array, l: Uint32Array): number;
  getsockopt(fd: number, lv: number, n: number, v: Uint8Array, l: Uint32Array): number;
  setsockopt(fd: number, lv: number, n: number, v: Uint8Array, l: number): number;
  shutdown(fd: number, how: number): number;
  close(fd: number): number;
  recv(fd: number, b: Uint8Array, n: number, f: number): number;
  send(fd: number, b: Uint8Array, n: number, f: number): number;
  sendto(fd: number, b: Uint8Array, n: number, f: number, a: Uint8Array, l: number): number;
  recvfrom(fd: number, b: Uint8Array, n: number, f: number, a: Uint8Array, l: Uint32Array): number;
  read(fd: number, b: Uint8Array, n: number): number;
  write(fd: number, b: Uint8Array, n: number): number;
  ioctl(fd: number, req: number, arg: Uint8Array): number;
  open(path: Uint8Array, flags: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(ep: number, op: number, fd: number, ev: Uint8Array): number;
  eventfd(init: number, flags: number): number;
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
  // errno is read as check's argument, before check is entered (see Libc).
  const check = (r: number, e: number): number => (r < 0 ? -e : r);

  const libc: Libc = {
    socket: (d, t, p) => check(s.socket(d, t, p), errno[0]),
    bind: (fd, a) => check(s.bind(fd, a, a.byteLength), errno[0]),
    connect: (fd, a) => check(s.connect(fd, a, a.byteLength), errno[0]),
    listen: (fd, b) => check(s.listen(fd, b), errno[0]),
    accept4: (fd, a, l, f) => check(s.accept4(fd, a, l, f), errno[0]),
    getsockname: (fd, a, l) => check(s.getsockname(fd, a, l), errno[0]),
    getpeername: (fd, a, l) => check(s.getpeername(fd, a, l), errno[0]),
    getsockopt: (fd, lv, n, v, l) => check(s.getsockopt(fd, lv, n, v, l), errno[0]),
    setsockopt: (fd, lv, n, v) => check(s.setsockopt(fd, lv, n, v, v.byteLength), errno[0]),
    shutdown: (fd, how) => check(s.shutdown(fd, how), errno[0]),
    close: (fd) => check(s.close(fd), errno[0]),
    recv: (fd, b, f) => check(s.recv(fd, b, b.byteLength, f), errno[0]),
    send: (fd, b, f) => check(s.send(fd, b, b.byteLength, f), errno[0]),
    sendto: (fd, b, f, a) => check(s.sendto(fd, b, b.byteLength, f, a, a.byteLength), errno[0]),
    recvfrom: (fd, b, f, a, l) => check(s.recvfrom(fd, b, b.byteLength, f, a, l), errno[0]),
    read: (fd, b) => check(s.read(fd, b, b.byteLength), errno[0]),
    write: (fd, b) => check(s.write(fd, b, b.byteLength), errno[0]),
    ioctl: (fd, req, arg) => check(s.ioctl(fd, req, arg), errno[0]),
    open: (path, flags) => check(s.open(path, flags), errno[0]),
    epoll_create1: (f) => check(s.epoll_create1(f), errno[0]),
    epoll_ctl: (ep, op, fd, ev) => check(s.epoll_ctl(ep, op, fd, ev), errno[0]),
    eventfd: (i, f) => check(s.eventfd(i, f), errno[0]),
  };

  const epollEventSize = process.arch === "x64" ? 12 : 16;
  return {
    runtime: "bun",
    libc,
    epollEventSize,
    createEpollWaiter: (epfd: number, maxEvents: number): EpollWaiter =>
      createBunEpollWaiter(epfd, maxEvents, epollEventSize),
    adoptStream: adoptBunStream,
    maxSendsInFlight: 4,
    sendOffThread: createBunSender(4),
  };
}
