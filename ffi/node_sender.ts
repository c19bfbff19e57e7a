/**
 * Blocking sends off the JS thread for Node, whose `node:ffi` has no
 * off-thread calls: a small pool of worker threads, made on first use, each
 * with its own `dlopen` of libc, doing one `send(2)` at a time and reporting
 * the count or `-errno` read on its own thread. Idle workers are unref'd so
 * they never keep the process alive.
 *
 * The bytes travel through a SharedArrayBuffer each worker keeps (grown to
 * the largest message it has sent), not in the message: a structured clone
 * gave the worker a fresh copy per send, garbage its own heap collected only
 * under pressure, so four busy workers held hundreds of MiB (4,000 sends of
 * 200 KiB: RSS 68 -> 368 MiB; with the shared slot it stays flat).
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
let slot = new Uint8Array(0);
parentPort.on("message", ({ fd, length, grown }) => {
  if (grown) slot = new Uint8Array(grown);
  const n = s.send(fd, slot, BigInt(length), 0x4000 /* MSG_NOSIGNAL */);
  parentPort.postMessage(n < 0n ? -errno[0] : Number(n));
});
`;

/** A slot's smallest size; it grows to the next power of two that holds a message. */
const MIN_SLOT = 64 * 1024;

/** One worker and the shared memory it sends from. */
interface Sender {
  worker: Worker;
  slot: Uint8Array;
}

interface Job {
  fd: number;
  bytes: Uint8Array;
  resolve: (n: number) => void;
  reject: (error: Error) => void;
}

/** Returns a `sendOffThread` backed by up to `size` worker threads. */
export function createNodeSender(size: number): (fd: number, data: Uint8Array) => Promise<number> {
  const idle: Sender[] = [];
  const queue: Job[] = [];
  let made = 0;

  const run = (sender: Sender, job: Job): void => {
    const { worker } = sender;
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
      if (next) run(sender, next);
      else idle.push(sender);
    };
    worker.once("message", onMessage);
    worker.once("error", onError);
    const length = job.bytes.byteLength;
    let grown: SharedArrayBuffer | undefined;
    if (sender.slot.byteLength < length) {
      let capacity = MIN_SLOT;
      while (capacity < length) capacity *= 2;
      grown = new SharedArrayBuffer(capacity);
      sender.slot = new Uint8Array(grown);
    }
    // Copied now, as a structured clone would: the caller's buffer is free again once this returns.
    sender.slot.set(job.bytes);
    worker.postMessage({ fd: job.fd, length, grown });
  };

  const start = (job: Job): void => {
    let sender = idle.pop();
    if (!sender && made < size) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: ["--disable-warning=ExperimentalWarning"],
      });
      worker.unref();
      made++;
      sender = { worker, slot: new Uint8Array(0) };
    }
    if (sender) run(sender, job);
    else queue.push(job);
  };

  return (fd, data) => new Promise<number>((resolve, reject) => start({ fd, bytes: data, resolve, reject }));
}
