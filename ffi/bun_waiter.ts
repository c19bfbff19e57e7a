/**
 * Bun's FFI has no off-thread calls, so the reactor's one blocking
 * `epoll_wait` runs in a Worker. Main thread and worker talk through shared
 * memory only: the main thread bumps a request counter and `Atomics.notify`s;
 * the worker, parked in `Atomics.wait`, runs `epoll_wait` into the shared
 * events buffer, stores the count (or `-errno`, read on its own thread) and
 * notifies back, which the main thread awaits with `Atomics.waitAsync`.
 * The reactor makes one round trip per wake-up. Measured on Bun 1.4.4 (2
 * busy cores), it takes 17-20 µs, about what a `postMessage` round trip takes
 * (with the bug below, about half the waits returned early, 6-14 µs, which
 * made it look twice as fast).
 *
 * A wake-up of either wait only means "look again", never "answered": the
 * worker's `notify` for request N can land on the main thread's wait for
 * N + 1 when the main thread saw DONE = N by itself (`waitAsync` said
 * "not-equal") and went on to the next request before that notify ran. Taking
 * such a wake-up as the answer returned a stale count while the worker still
 * ran `epoll_wait`; from then on DONE never equalled the awaited value again,
 * every `waitAsync` returned "not-equal" at once, and the reactor spun in
 * microtasks without yielding (Bun at 100 % CPU, timers dead). So both sides
 * re-check their word and wait again until it holds the number they need.
 *
 * @module
 */
/// <reference types="bun-types" />
import type { EpollWaiter } from "./types.ts";
import { LIBC_PATH } from "./symbols.ts";

/** Slots of the shared control words. */
const REQUEST = 0; // bumped by the main thread for each wait
const RESULT = 1; // epoll_wait's count, or -errno
const DONE = 2; // the request number the worker has answered

// Inline source: a worker file beside this one would not survive bundling.
const WORKER_SOURCE = `
import { dlopen, toArrayBuffer } from "bun:ffi";
const { symbols } = dlopen(${JSON.stringify(LIBC_PATH)}, {
  epoll_wait: { args: ["i32", "ptr", "i32", "i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
});
const errno = new Int32Array(toArrayBuffer(symbols.__errno_location(), 0, 4));
self.onmessage = ({ data }) => {
  const { epfd, max } = data;
  const events = new Uint8Array(data.events);
  const control = new Int32Array(data.control);
  // Serve requests until the process exits; an unref'd worker does not hold it.
  for (let seen = 0; ; ) {
    while (Atomics.load(control, ${REQUEST}) === seen) Atomics.wait(control, ${REQUEST}, seen);
    seen = Atomics.load(control, ${REQUEST});
    const n = symbols.epoll_wait(epfd, events, max, -1);
    Atomics.store(control, ${RESULT}, n < 0 ? -errno[0] : n);
    Atomics.store(control, ${DONE}, seen);
    Atomics.notify(control, ${DONE});
  }
};
`;

/** Starts the waiter worker for `epfd`. It is unref'd whenever no wait that holds the process is in flight. */
export function createBunEpollWaiter(epfd: number, maxEvents: number, eventSize: number): EpollWaiter {
  const shared = new SharedArrayBuffer(eventSize * maxEvents);
  const control = new Int32Array(new SharedArrayBuffer(3 * 4));
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  // Bun's Worker has ref()/unref(); the DOM typing it shares with Deno does not say so.
  const worker = new Worker(url) as Worker & { ref(): void; unref(): void };
  worker.postMessage({ epfd, max: maxEvents, events: shared, control: control.buffer });
  worker.unref();
  let request = 0;
  let waiting = false;
  let held = true;
  return {
    events: new Uint8Array(shared),
    async wait(): Promise<number> {
      if (waiting) throw new Error("epoll waiter: one wait at a time");
      waiting = true;
      const previous = request;
      request = (request + 1) | 0;
      // A wait in flight is work the program asked for: keep the process up (unless told it is not).
      if (held) worker.ref();
      try {
        Atomics.store(control, REQUEST, request);
        Atomics.notify(control, REQUEST);
        // Until the worker has answered this request (see the module comment).
        for (let done = previous; done !== request; done = Atomics.load(control, DONE)) {
          const answer = Atomics.waitAsync(control, DONE, done);
          if (answer.async) await answer.value;
        }
        return Atomics.load(control, RESULT);
      } finally {
        worker.unref();
        waiting = false;
      }
    },
    hold(on: boolean): void {
      held = on;
      if (!waiting) return;
      if (on) worker.ref();
      else worker.unref();
    },
  };
}
