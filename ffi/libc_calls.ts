/**
 * The `Libc` every adapter returns, built one way from the functions its FFI
 * bound: each call's result, or `-errno` read right after it.
 *
 * @module
 */
import type { Libc } from "./types.ts";

/**
 * The libc functions of `SYMBOLS` as a runtime's FFI hands them over. `W` is
 * how it takes a 64-bit integer (a size, ioctl's request): `number` on Bun,
 * `bigint` on Deno (a number would push the call off its fast path) and Node
 * (it refuses a number). 64-bit results come back as numbers or bigints.
 */
export interface LibcFunctions<W> {
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
  recv(fd: number, b: Uint8Array, n: W, f: number): number | bigint;
  send(fd: number, b: Uint8Array, n: W, f: number): number | bigint;
  sendto(fd: number, b: Uint8Array, n: W, f: number, a: Uint8Array, l: number): number | bigint;
  recvfrom(fd: number, b: Uint8Array, n: W, f: number, a: Uint8Array, l: Uint32Array): number | bigint;
  read(fd: number, b: Uint8Array, n: W): number | bigint;
  write(fd: number, b: Uint8Array, n: W): number | bigint;
  ioctl(fd: number, req: W, arg: Uint8Array): number;
  open(path: Uint8Array, flags: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(ep: number, op: number, fd: number, ev: Uint8Array): number;
  eventfd(init: number, flags: number): number;
}

/**
 * The `Libc` over `s`, reading failures from `errno`, a typed array over the
 * JS thread's errno (every call here runs on that thread). `wide` turns a
 * number into the runtime's 64-bit argument.
 */
export function libcCalls<W>(s: LibcFunctions<W>, errno: Int32Array, wide: (n: number) => W): Libc {
  // errno is read as an argument of check, so before check is entered: see Libc.
  const check = (r: number, e: number): number => (r < 0 ? -e : r);
  const check64 = (r: number | bigint, e: number): number => (r < 0 ? -e : Number(r));
  return {
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
    recv: (fd, b, f) => check64(s.recv(fd, b, wide(b.byteLength), f), errno[0]),
    send: (fd, b, f) => check64(s.send(fd, b, wide(b.byteLength), f), errno[0]),
    sendto: (fd, b, f, a) => check64(s.sendto(fd, b, wide(b.byteLength), f, a, a.byteLength), errno[0]),
    recvfrom: (fd, b, f, a, l) => check64(s.recvfrom(fd, b, wide(b.byteLength), f, a, l), errno[0]),
    read: (fd, b) => check64(s.read(fd, b, wide(b.byteLength)), errno[0]),
    write: (fd, b) => check64(s.write(fd, b, wide(b.byteLength)), errno[0]),
    ioctl: (fd, req, arg) => check(s.ioctl(fd, wide(req), arg), errno[0]),
    open: (path, flags) => check(s.open(path, flags), errno[0]),
    epoll_create1: (f) => check(s.epoll_create1(f), errno[0]),
    epoll_ctl: (ep, op, fd, ev) => check(s.epoll_ctl(ep, op, fd, ev), errno[0]),
    eventfd: (i, f) => check(s.eventfd(i, f), errno[0]),
  };
}
