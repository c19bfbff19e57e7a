/**
 * Blocking sends off the JS thread for Node, whose `node:ffi` has no
 * off-thread calls: a small pool of worker threads, made on first use, each
 * with its own `dlopen` of libc, doing one `send(2)` at a time and reporting
 * the count or `-errno` read on its own thread. Idle workers are unref'd so
 * they never keep the process alive.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { LIBC_PATH } from "./symbols.ts";

// Inline source: a worker file beside this one would not survive bundling.
// The main thread has already printed node:ffi's ExperimentalWarning once;
// each worker would print it again, so workers run with it silenced. Their
// execArgv is only that: a worker refuses many of the main thread's flags
// (those `node --test` gives its children, for one).
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const ffi = process.getBuiltinModule("node:ffi");
const { functions: s } = ffi.dlopen(${JSON.stringify(LIBC_PATH)}, {
  send: { arguments: ["i32", "pointer", "u64", "i32"], return: "i64" },
  __errno_location: { arguments: [], return: "pointer" },
});
const errno = new Int32Array(ffi.toArrayBuffer(s.__errno_location(), 4, false));
parentPort.on("message", ({ fd, bytes }) => {
  const n = s.send(fd, bytes, BigInt(bytes.byteLength), 0x4000 /* MSG_NOSIGNAL */);
  parentPort.postMessage(n < 0n ? -errno[0] : Number(n));
});
`;

interface Job {
  fd: number;
  bytes: Uint8Array;
  resolve: (n: number) => void;
  reject: (error: Error) => void;
}

/** Returns a `sendOffThread` backed by up to `size` worker threads. */
export function createNodeSender(size: number): (fd: number, data: Uint8Array) => Promise<number> {
  const idle: Worker[] = [];
  const queue: Job[] = [];
  let made = 0;

  const run = (worker: Worker, job: Job): void => {
    worker.ref(); // a send in flight is work the program asked for
    const onError = (error: Error): void => {
      // The worker is gone (it could not load node:ffi, say): this send fails, the next one gets a new worker.
      worker.off("message", onMessage);
      made--;
      job.reject(error);
      const next = queue.shift();
      if (next) start(next);
    };
    const onMessage = (n: number): void => {
      worker.off("error", onError);
      worker.unref();
      job.resolve(n);
      const next = queue.shift();
      if (next) run(worker, next);
      else idle.push(worker);
    };
    worker.once("message", onMessage);
    worker.once("error", onError);
    worker.postMessage({ fd: job.fd, bytes: job.bytes }); // structured clone: the worker gets its own copy
  };

  const start = (job: Job): void => {
    let worker = idle.pop();
    if (!worker && made < size) {
      worker = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: ["--disable-warning=ExperimentalWarning"],
      });
      worker.unref();
      made++;
    }
    if (worker) run(worker, job);
    else queue.push(job);
  };

  return (fd, data) => new Promise<number>((resolve, reject) => start({ fd, bytes: data, resolve, reject }));
}
