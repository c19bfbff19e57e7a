/**
 * The Deno adapter. Deno has no public way to hand a raw fd to its own
 * networking, so every socket is driven by the runtime-neutral epoll reactor:
 * syscalls run synchronously here on the JS thread, and the single
 * `epoll_wait` runs as a `nonblocking` FFI call on Deno's blocking pool.
 *
 * @module
 */
import { type CType, LIBC_PATH, SYMBOLS } from "./symbols.ts";
import { libcCalls, type LibcFunctions } from "./libc_calls.ts";
import type { Adapter, EpollWaiter } from "./types.ts";

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

interface DenoSymbols extends LibcFunctions<bigint> {
  __errno_location(): Deno.PointerValue;
  epoll_wait_nonblocking(ep: number, ev: Uint8Array, max: number, ms: number): Promise<number>;
  send_nonblocking(fd: number, b: Uint8Array, n: bigint, f: number): Promise<number | bigint>;
}

/** Deno's calls that say whether an op in flight (a `nonblocking` FFI call) keeps the process alive. */
interface OpPromises {
  refOpPromise(promise: Promise<unknown>): void;
  unrefOpPromise(promise: Promise<unknown>): void;
}

/**
 * Deno's own: its `node:net` unrefs a socket's pending read with these. No
 * public API can unref a `nonblocking` call; if a Deno release moves them, a
 * read parked on an unref'd connection keeps the process alive, as every
 * parked read did before (test/e2e/lifetime.test.ts fails then).
 */
const opPromises: OpPromises | undefined = (() => {
  const internal = (Deno as unknown as Record<symbol, { core?: Partial<OpPromises> } | undefined>)[
    (Deno as unknown as { internal: symbol }).internal
  ];
  const core = internal?.core;
  return typeof core?.refOpPromise === "function" && typeof core.unrefOpPromise === "function"
    ? core as OpPromises
    : undefined;
})();

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
  const libc = libcCalls(s, errno, BigInt);

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
      let held = true;
      let inFlight: Promise<number> | null = null;
      return {
        events,
        // `events` is held by the waiter, so it outlives the call.
        wait: async (): Promise<number> => {
          const call = s.epoll_wait_nonblocking(epfd, events, maxEvents, -1);
          inFlight = call;
          if (!held) opPromises?.unrefOpPromise(call);
          try {
            const n = await call;
            return n < 0 ? -4 /* EINTR: the real errno stayed on the pool thread */ : n;
          } finally {
            inFlight = null;
          }
        },
        hold(on: boolean): void {
          held = on;
          if (inFlight === null) return;
          if (on) opPromises?.refOpPromise(inFlight);
          else opPromises?.unrefOpPromise(inFlight);
        },
      };
    },
  };
}
