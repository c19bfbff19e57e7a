/**
 * Bun's FFI has no off-thread calls, so the reactor's one blocking
 * `epoll_wait` runs in a Worker. The worker writes events into a
 * SharedArrayBuffer the main thread reads after each wake-up, and reports
 * the count (or `-errno`, read on the worker's own thread).
 *
 * @module
 */
/// <reference types="bun-types" />
import type { EpollWaiter } from "./types.ts";
import { LIBC_PATH } from "./symbols.ts";

// Inline source: a worker file beside this one would not survive bundling.
const WORKER_SOURCE = `
import { dlopen, toArrayBuffer } from "bun:ffi";
const { symbols } = dlopen(${JSON.stringify(LIBC_PATH)}, {
  epoll_wait: { args: ["i32", "ptr", "i32", "i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
});
const errno = new Int32Array(toArrayBuffer(symbols.__errno_location(), 0, 4));
let events = null;
self.onmessage = (message) => {
  const { epfd, max, buffer } = message.data;
  if (buffer) events = new Uint8Array(buffer);
  const n = symbols.epoll_wait(epfd, events, max, -1);
  postMessage(n < 0 ? -errno[0] : n);
};
`;

/** Starts the waiter worker for `epfd`. It is unref'd whenever no wait is in flight. */
export function createBunEpollWaiter(epfd: number, maxEvents: number, eventSize: number): EpollWaiter {
  const shared = new SharedArrayBuffer(eventSize * maxEvents);
  const events = new Uint8Array(shared);
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  // Bun's Worker has ref()/unref(); the DOM typing it shares with Deno does not say so.
  const worker = new Worker(url) as Worker & { ref(): void; unref(): void };
  worker.unref();
  let pending: ((n: number) => void) | null = null;
  let sentBuffer = false;
  worker.onmessage = (message: MessageEvent<number>): void => {
    worker.unref();
    const resolve = pending;
    pending = null;
    resolve?.(message.data);
  };
  return {
    events,
    wait(): Promise<number> {
      if (pending) throw new Error("epoll waiter: one wait at a time");
      return new Promise<number>((resolve) => {
        pending = resolve;
        // A wait in flight is work the program asked for: keep the process up.
        worker.ref();
        worker.postMessage({ epfd, max: maxEvents, buffer: sentBuffer ? undefined : shared });
        sentBuffer = true;
      });
    },
  };
}
