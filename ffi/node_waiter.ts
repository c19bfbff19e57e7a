/**
 * The reactor's waiter on Node, with no thread: one libuv `uv_poll_t` on
 * Node's own loop watches the epoll fd itself (an epoll fd is readable while
 * any of its events are ready). When it fires, the callback runs
 * `epoll_wait(…, 0)` synchronously on the JS thread and settles the pending
 * `wait()`.
 *
 * Three things `node:ffi` (26.10.0) leaves to us:
 * - A callback called by libuv does not run the microtask queue afterwards,
 *   so a promise settled inside it would sit until some unrelated Node
 *   callback came along. The settling goes through `setImmediate`, whose
 *   callbacks do run microtasks, in the same loop iteration.
 * - A JS-owned buffer cannot hold a libuv handle (the handle must not move and
 *   must outlive any GC), so the `uv_poll_t` comes from `malloc`, sized by
 *   `uv_handle_size`. The reactor lives as long as its thread, so the handle
 *   is closed only when the thread exits, and its callback is never
 *   unregistered: nothing can call into freed memory.
 * - The loop pointer is `ffi.getCurrentEventLoop()`; libuv's functions come
 *   from `dlopen(null)`, the `node` binary itself.
 *
 * Keeping the process alive follows the other runtimes: a `wait()` in flight
 * holds a ref on the handle (unless the reactor says it need not: `hold`);
 * between waits the handle is unref'd (still polling, so a wait right after
 * the last one costs no restart), and it is stopped the first time it fires
 * with nobody waiting.
 *
 * @module
 */
import process from "node:process";
import type { NodeFfi } from "./node_ffi.ts";
import type { EpollWaiter } from "./types.ts";

const UV_POLL = 8; // uv_handle_type
const UV_READABLE = 1;
const EINTR = 4;

/** What the waiter needs from the libc the adapter opened. */
export interface WaiterParts {
  readonly epfd: number;
  readonly maxEvents: number;
  readonly eventSize: number;
  /** `epoll_wait(epfd, events, maxEvents, 0)`: the count, or `-errno`. */
  epollWait(events: Uint8Array): number;
  /** C heap memory that never moves; 0n when out of memory. */
  malloc(size: number): bigint;
  /** The address of libc's `free`, which is a valid `uv_close_cb`: `void (*)(void*)`. */
  readonly free: bigint;
}

interface UvSymbols {
  uv_handle_size(type: number): bigint;
  uv_poll_init(loop: bigint, handle: bigint, fd: number): number;
  uv_poll_start(handle: bigint, events: number, callback: bigint): number;
  uv_poll_stop(handle: bigint): number;
  uv_ref(handle: bigint): void;
  uv_unref(handle: bigint): void;
  uv_close(handle: bigint, callback: bigint): void;
}

/** libuv errors are `-errno` on Linux; this names one for a thrown Error. */
function uvFailure(call: string, code: number): Error {
  return new Error(`vsock: ${call} failed with ${code} (-errno)`);
}

/** Watches `parts.epfd` from Node's own loop; see the module comment. */
export function createNodeEpollWaiter(ffi: NodeFfi, parts: WaiterParts): EpollWaiter {
  const { lib, functions } = ffi.dlopen(null, {
    uv_handle_size: { arguments: ["i32"], return: "u64" },
    uv_poll_init: { arguments: ["pointer", "pointer", "i32"], return: "i32" },
    uv_poll_start: { arguments: ["pointer", "i32", "pointer"], return: "i32" },
    uv_poll_stop: { arguments: ["pointer"], return: "i32" },
    uv_ref: { arguments: ["pointer"], return: "void" },
    uv_unref: { arguments: ["pointer"], return: "void" },
    uv_close: { arguments: ["pointer", "pointer"], return: "void" },
  });
  const uv = functions as unknown as UvSymbols;
  const handle = parts.malloc(Number(uv.uv_handle_size(UV_POLL)));
  if (handle === 0n) throw uvFailure("malloc(uv_poll_t)", -12);
  const init = uv.uv_poll_init(ffi.getCurrentEventLoop(), handle, parts.epfd);
  if (init < 0) throw uvFailure("uv_poll_init", init);

  const events = new Uint8Array(parts.eventSize * parts.maxEvents);
  let pending: ((count: number) => void) | null = null;
  let polling = false;
  let held = true;
  let closed = false;

  // node:ffi frees a library's registered callbacks once its DynamicLibrary is collected; `lib`
  // stays reachable through the functions in `uv`, which the callback and the exit handler hold
  // (the unit test "keeps waking across full garbage collections" fails if it does not).
  // Must not throw: nothing here can, and a libuv callback has nowhere to throw to.
  const onReadable = lib.registerCallback(
    { arguments: ["pointer", "i32", "i32"], return: "void" },
    (_handle, status) => {
      const settle = pending;
      if (!settle) {
        // Fired between waits: stop, so an idle loop does not spin on a ready epoll fd.
        uv.uv_poll_stop(handle);
        polling = false;
        return;
      }
      const count = (status as number) < 0 ? (status as number) : parts.epollWait(events);
      if (count === 0 || count === -EINTR) return; // nothing ready after all; keep polling
      pending = null;
      uv.uv_unref(handle);
      setImmediate(settle, count);
    },
  );

  // A worker thread's loop is closed when the worker ends, and Node aborts the
  // whole process if a handle is still open then. So the handle is closed as
  // the thread exits, with libc's `free` as the close callback: libuv frees
  // the memory itself in its last turn, and no JS runs after 'exit'.
  process.once("exit", () => {
    closed = true;
    uv.uv_close(handle, parts.free);
  });

  return {
    events,
    wait(): Promise<number> {
      if (pending) return Promise.reject(new Error("epoll waiter: one wait at a time"));
      if (closed) return new Promise<number>(() => {}); // the thread is exiting: nothing will wake again
      return new Promise<number>((resolve, reject) => {
        if (!polling) {
          const started = uv.uv_poll_start(handle, UV_READABLE, onReadable);
          if (started < 0) return reject(uvFailure("uv_poll_start", started));
          polling = true;
        }
        // A wait in flight is work the program asked for: keep the process up (unless told it is not).
        if (held) uv.uv_ref(handle);
        pending = resolve;
      });
    },
    hold(on: boolean): void {
      held = on;
      if (!pending) return;
      if (on) uv.uv_ref(handle);
      else uv.uv_unref(handle);
    },
  };
}
