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
import { libcCalls, type LibcFunctions } from "./libc_calls.ts";
import type { Adapter, EpollWaiter } from "./types.ts";

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
interface NodeSymbols extends LibcFunctions<bigint> {
  epoll_wait(ep: number, ev: Uint8Array, max: number, ms: number): number;
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
  const libc = libcCalls(s, errno, BigInt);

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
        epollWait: (events) => {
          const n = s.epoll_wait(epfd, events, maxEvents, 0);
          return n < 0 ? -errno[0] : n;
        },
        malloc: (size) => s.malloc(BigInt(size)),
        free: opened.lib.getSymbol("free"),
      }),
    maxSendsInFlight: SENDERS,
    sendOffThread: createNodeSender(SENDERS),
  };
}
