/**
 * Splicing the process's stdin/stdout with one connection at a time, for
 * `connect` and `listen`: stdin's EOF half-closes the connection; the
 * connection's EOF ends the session once stdout has taken everything.
 *
 * @module
 */
import process from "node:process";
import type { Duplex } from "node:stream";

let stdinEnded = false;
let current: Duplex | undefined;
let wired = false;

function wireStdin(): void {
  if (wired) return;
  wired = true;
  process.stdin.on("data", (chunk: Uint8Array) => {
    const target = current;
    if (!target || target.writableEnded) return;
    if (!target.write(chunk)) {
      process.stdin.pause();
      target.once("drain", () => current === target && process.stdin.resume());
    }
  });
  process.stdin.on("end", () => {
    stdinEnded = true;
    current?.end();
  });
  // A closed or unreadable stdin means nothing more to send.
  process.stdin.on("error", () => {
    stdinEnded = true;
    current?.end();
  });
}

/**
 * Runs one session: stdin → `stream`, `stream` → stdout. Resolves when both
 * directions have ended (or the stream failed), with everything handed to
 * stdout; stdin is paused again for the next session. Call {@link endStdout}
 * before exiting.
 */
export function stdioSession(stream: Duplex): Promise<{ error?: Error }> {
  wireStdin();
  current = stream;
  if (stdinEnded) stream.end();
  else process.stdin.resume();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      current = undefined;
      if (!stdinEnded) process.stdin.pause();
      stream.unpipe(process.stdout);
      if (!stream.destroyed) stream.destroy();
      resolve({ error });
    };
    stream.pipe(process.stdout, { end: false });
    stream.on("error", (error: Error) => finish(error));
    // Done when both directions are: the stream closes itself once the peer's
    // EOF has arrived and stdin's end has been passed on. A person at a
    // terminal gets the prompt back at the peer's EOF, as with nc.
    stream.on("end", () => process.stdin.isTTY && finish());
    stream.on("close", () => finish());
  });
}

/**
 * Ends stdout and resolves once it has flushed. Only `end()`'s callback
 * waits for a slow reader of a pipe on every runtime (Bun calls an empty
 * `write()`'s callback early), and `process.exit` drops what is still queued.
 */
export function endStdout(): Promise<void> {
  return new Promise((resolve) => {
    process.stdout.once("error", () => resolve());
    process.stdout.end(() => resolve());
  });
}
