/**
 * The Node.js adapter (Node 26.1+), through the built-in `node:ffi`. Syscalls
 * run synchronously on the JS thread; readiness comes from Node's own libuv
 * loop, which watches the reactor's epoll fd (see node_waiter.ts), so no
 * thread is needed for it. Blocking SEQPACKET sends run in worker threads
 * (node_sender.ts). Node cannot adopt the fd of a vsock socket into `net`
 * (its handle type is "UNKNOWN" to libuv), so every socket uses the reactor.
 *
 * @module
 */
import process from "node:process";
import type { NodeFfi, NodeFfiSignature, NodeFfiType } from "./node_ffi.ts";
import { createNodeSender } from "./node_sender.ts";
import { createNodeEpollWaiter } from "./node_waiter.ts";
import { type CType, LIBC_PATH, SYMBOLS } from "./symbols.ts";
import type { Adapter, EpollWaiter, Libc } from "./types.ts";

const NATIVE: Record<CType, NodeFfiType> = {
  i32: "i32",
  u32: "u32",
  u64: "u64",
  usize: "u64",
  isize: "i64",
  ptr: "pointer",
};

/** How many blocking sends may be in flight: one per worker thread. */
const SENDERS = 4;

// node:ffi hands 64-bit integers over as bigint both ways: on Node 26.10.0 a
// u64 argument given as a number is refused ("Argument 2 must be a uint64"),
// and i64/u64/pointer results are always bigint.
interface NodeSymbols {
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
  recv(fd: number, b: Uint8Array, n: bigint, f: number): bigint;
  send(fd: number, b: Uint8Array, n: bigint, f: number): bigint;
  sendto(fd: number, b: Uint8Array, n: bigint, f: number, a: Uint8Array, l: number): bigint;
  recvfrom(fd: number, b: Uint8Array, n: bigint, f: number, a: Uint8Array, l: Uint32Array): bigint;
  read(fd: number, b: Uint8Array, n: bigint): bigint;
  write(fd: number, b: Uint8Array, n: bigint): bigint;
  ioctl(fd: number, req: bigint, arg: Uint8Array): number;
  open(path: Uint8Array, flags: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(ep: number, op: number, fd: number, ev: Uint8Array): number;
  epoll_wait(ep: number, ev: Uint8Array, max: number, ms: number): number;
  eventfd(init: number, flags: number): number;
  __errno_location(): bigint;
  // Not in the shared table: only the waiter's uv_poll_t needs C heap memory (freed by libuv through `free`'s address).
  malloc(size: bigint): bigint;
}

/** `node:ffi`, or a clear error where this Node has none. */
export function loadNodeFfi(): NodeFfi {
  const ffi = process.getBuiltinModule("node:ffi") as unknown as NodeFfi | undefined;
  if (!ffi) throw new Error("vsock: this Node.js has no node:ffi; it needs Node 26.1 or later");
  return ffi;
}

/** Opens libc with `node:ffi` and returns the adapter. Under `--permission` it needs `--allow-ffi`. */
export function createNodeAdapter(): Adapter {
  const ffi = loadNodeFfi();
  const table: Record<string, NodeFfiSignature> = {};
  for (const [name, spec] of Object.entries(SYMBOLS)) {
    table[name] = { arguments: spec.args.map((t) => NATIVE[t]), return: NATIVE[spec.returns] };
  }
  table.malloc = { arguments: ["u64"], return: "pointer" };
  const opened = ffi.dlopen(LIBC_PATH, table);
  const s = opened.functions as unknown as NodeSymbols;
  // A view over this thread's errno, made once: its address is fixed per
  // thread, and every synchronous call runs on this one.
  const errno = new Int32Array(ffi.toArrayBuffer(s.__errno_location(), 4, false));
  // errno is read as check's argument, before check is entered (see Libc).
  const check = (r: number, e: number): number => (r < 0 ? -e : r);
  const check64 = (r: bigint, e: number): number => (r < 0n ? -e : Number(r));

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
    recv: (fd, b, f) => check64(s.recv(fd, b, BigInt(b.byteLength), f), errno[0]),
    send: (fd, b, f) => check64(s.send(fd, b, BigInt(b.byteLength), f), errno[0]),
    sendto: (fd, b, f, a) => check64(s.sendto(fd, b, BigInt(b.byteLength), f, a, a.byteLength), errno[0]),
    recvfrom: (fd, b, f, a, l) => check64(s.recvfrom(fd, b, BigInt(b.byteLength), f, a, l), errno[0]),
    read: (fd, b) => check64(s.read(fd, b, BigInt(b.byteLength)), errno[0]),
    write: (fd, b) => check64(s.write(fd, b, BigInt(b.byteLength)), errno[0]),
    ioctl: (fd, req, arg) => check(s.ioctl(fd, BigInt(req), arg), errno[0]),
    open: (path, flags) => check(s.open(path, flags), errno[0]),
    epoll_create1: (f) => check(s.epoll_create1(f), errno[0]),
    epoll_ctl: (ep, op, fd, ev) => check(s.epoll_ctl(ep, op, fd, ev), errno[0]),
    eventfd: (i, f) => check(s.eventfd(i, f), errno[0]),
  };

  const epollEventSize = process.arch === "x64" ? 12 : 16;
  return {
    runtime: "node",
    libc,
    epollEventSize,
    createEpollWaiter: (epfd: number, maxEvents: number): EpollWaiter =>
      createNodeEpollWaiter(ffi, {
        epfd,
        maxEvents,
        eventSize: epollEventSize,
        // Called inside the uv_poll callback, on this thread: errno is ours to read.
        epollWait: (events) => check(s.epoll_wait(epfd, events, maxEvents, 0), errno[0]),
        malloc: (size) => s.malloc(BigInt(size)),
        free: opened.lib.getSymbol("free"),
      }),
    maxSendsInFlight: SENDERS,
    sendOffThread: createNodeSender(SENDERS),
  };
}
