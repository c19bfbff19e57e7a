/**
 * The Deno adapter. Deno has no public way to hand a raw fd to its own
 * networking, so every socket is driven by the runtime-neutral epoll reactor:
 * syscalls run synchronously here on the JS thread, and the single
 * `epoll_wait` runs as a `nonblocking` FFI call on Deno's blocking pool.
 *
 * @module
 */
import { type CType, LIBC_PATH, SYMBOLS } from "./symbols.ts";
import type { Adapter, EpollWaiter, Libc } from "./types.ts";

const MSG_NOSIGNAL = 0x4000;

const NATIVE: Record<CType, Deno.NativeType> = {
  i32: "i32",
  u32: "u32",
  u64: "u64",
  usize: "usize",
  isize: "isize",
  ptr: "buffer",
};

function definitions(): Deno.ForeignLibraryInterface {
  const out: Record<string, Deno.ForeignFunction> = {};
  for (const [name, spec] of Object.entries(SYMBOLS)) {
    out[name] = {
      parameters: spec.args.map((t) => NATIVE[t]),
      result: name === "__errno_location" ? "pointer" : NATIVE[spec.returns],
    };
  }
  // The waiter's copy of epoll_wait runs off the JS thread; errno from that
  // thread is out of reach, which is fine: it only ever reports EINTR.
  out.epoll_wait_nonblocking = {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  };
  // Blocking sends for SEQPACKET sockets, on the same pool.
  out.send_nonblocking = {
    name: "send",
    parameters: ["i32", "buffer", "usize", "i32"],
    result: "isize",
    nonblocking: true,
  };
  return out;
}

interface DenoSymbols {
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
  recv(fd: number, b: Uint8Array, n: bigint, f: number): number | bigint;
  send(fd: number, b: Uint8Array, n: bigint, f: number): number | bigint;
  sendto(fd: number, b: Uint8Array, n: bigint, f: number, a: Uint8Array, l: number): number | bigint;
  recvfrom(fd: number, b: Uint8Array, n: bigint, f: number, a: Uint8Array, l: Uint32Array): number | bigint;
  read(fd: number, b: Uint8Array, n: bigint): number | bigint;
  write(fd: number, b: Uint8Array, n: bigint): number | bigint;
  ioctl(fd: number, req: bigint, arg: Uint8Array): number;
  open(path: Uint8Array, flags: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(ep: number, op: number, fd: number, ev: Uint8Array): number;
  eventfd(init: number, flags: number): number;
  __errno_location(): Deno.PointerValue;
  epoll_wait_nonblocking(ep: number, ev: Uint8Array, max: number, ms: number): Promise<number>;
  send_nonblocking(fd: number, b: Uint8Array, n: bigint, f: number): Promise<number | bigint>;
}

/** Opens libc with Deno's FFI and returns the adapter. Needs `--allow-ffi`. */
export function createDenoAdapter(): Adapter {
  const lib = Deno.dlopen(LIBC_PATH, definitions());
  const s = lib.symbols as unknown as DenoSymbols;
  const errnoPtr = s.__errno_location();
  if (errnoPtr === null) throw new Error("libc returned no errno location");
  // A view over the JS thread's errno (all synchronous calls run there, and
  // its address never moves). A typed array, not UnsafePointerView.getInt32():
  // that is a call into the runtime, where V8 may run its own code first.
  const errno = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(errnoPtr, 4));
  // errno is read as check's argument, before check is entered (see Libc).
  const check = (r: number, e: number): number => (r < 0 ? -e : r);
  const check64 = (r: number | bigint, e: number): number => (r < 0 ? -e : Number(r));

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
    // usize as BigInt: a plain number would push the call off Deno's fast path.
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

  const epollEventSize = Deno.build.arch === "x86_64" ? 12 : 16;
  return {
    runtime: "deno",
    libc,
    epollEventSize,
    // A quarter of the pool: the waiter and file I/O keep room.
    maxSendsInFlight: 8,
    async sendOffThread(fd: number, data: Uint8Array): Promise<number> {
      const n = await s.send_nonblocking(fd, data, BigInt(data.byteLength), MSG_NOSIGNAL);
      return n < 0 ? -1 : Number(n); // errno stayed on the pool thread
    },
    createEpollWaiter(epfd: number, maxEvents: number): EpollWaiter {
      const events = new Uint8Array(epollEventSize * maxEvents);
      return {
        events,
        // `events` is held by the waiter, so it outlives the call.
        wait: async (): Promise<number> => {
          const n = await s.epoll_wait_nonblocking(epfd, events, maxEvents, -1);
          return n < 0 ? -4 /* EINTR: the real errno stayed on the pool thread */ : n;
        },
      };
    },
  };
}
