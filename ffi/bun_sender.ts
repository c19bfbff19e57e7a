/**
 * Blocking sends off the JS thread for Bun, whose FFI has none: a small pool
 * of Workers, made on first use, each doing one `send(2)` at a time and
 * reporting the count or `-errno` (read on its own thread). Idle workers are
 * unref'd so they never keep the process alive.
 *
 * @module
 */
/// <reference types="bun-types" />
import { LIBC_PATH } from "./symbols.ts";

const WORKER_SOURCE = `
import { dlopen, toArrayBuffer } from "bun:ffi";
const { symbols } = dlopen(${JSON.stringify(LIBC_PATH)}, {
  send: { args: ["i32", "ptr", "u64", "i32"], returns: "i64_fast" },
  __errno_location: { args: [], returns: "ptr" },
});
const errno = new Int32Array(toArrayBuffer(symbols.__errno_location(), 0, 4));
self.onmessage = ({ data: { fd, bytes } }) => {
  const n = symbols.send(fd, bytes, bytes.byteLength, 0x4000 /* MSG_NOSIGNAL */);
  postMessage(n < 0 ? -errno[0] : n);
};
`;

type RefWorker = Worker & { ref(): void; unref(): void };

interface Job {
  fd: number;
  bytes: Uint8Array;
  resolve: (n: number) => void;
}

/** Returns a `sendOffThread` backed by up to `size` workers. */
export function createBunSender(size: number): (fd: number, data: Uint8Array) => Promise<number> {
  const idle: RefWorker[] = [];
  const queue: Job[] = [];
  let made = 0;
  let url: string | undefined;

  const run = (worker: RefWorker, job: Job): void => {
    worker.ref(); // a send in flight is work the program asked for
    worker.onmessage = (message: MessageEvent<number>): void => {
      worker.unref();
      job.resolve(message.data);
      const next = queue.shift();
      if (next) run(worker, next);
      else idle.push(worker);
    };
    worker.postMessage({ fd: job.fd, bytes: job.bytes }); // structured clone: the worker gets its own copy
  };

  return (fd, data) =>
    new Promise<number>((resolve) => {
      const job = { fd, bytes: data, resolve };
      let worker = idle.pop();
      if (!worker && made < size) {
        url ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
        worker = new Worker(url) as RefWorker;
        worker.unref();
        made++;
      }
      if (worker) run(worker, job);
      else queue.push(job);
    });
}
