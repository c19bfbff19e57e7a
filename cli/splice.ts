/**
 * Splicing two Duplexes both ways: each side's EOF becomes a half-close of
 * the other (`pipe` calls `end()`), `pipe` applies backpressure, and an error
 * or abrupt close on either side tears down both.
 *
 * @module
 */
import type { Duplex } from "node:stream";

/** How a splice went. */
export interface SpliceResult {
  /** Bytes from `a` to `b`. */
  aToB: number;
  /** Bytes from `b` to `a`. */
  bToA: number;
  /** `"closed"` when both directions ended with EOF, else what ended it. */
  ended: string;
}

/** A running splice: `done` settles when both sides have closed; `abort` tears both down. */
export interface Splice {
  readonly done: Promise<SpliceResult>;
  abort(reason: string): void;
}

function describe(error: Error): string {
  const code = (error as { code?: string }).code;
  return code && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}

/** Splices `a` and `b`; `names` label them in the `ended` text. */
export function splice(a: Duplex, b: Duplex, names: [string, string] = ["client", "target"]): Splice {
  const result: SpliceResult = { aToB: 0, bToA: 0, ended: "" };
  const abort = (reason: string): void => {
    if (!result.ended) result.ended = reason;
    a.destroy();
    b.destroy();
  };
  const watch = (side: Duplex, other: Duplex, name: string): Promise<void> => {
    side.on("error", (error: Error) => {
      if (!result.ended) result.ended = `${name} error: ${describe(error)}`;
      other.destroy();
    });
    return new Promise((resolve) =>
      side.once("close", () => {
        // Closed before both directions finished: nothing more can flow, tear down the other side.
        if (!side.readableEnded || !side.writableFinished) {
          if (!result.ended) result.ended = `${name} closed early`;
          other.destroy();
        }
        resolve();
      })
    );
  };
  const closed = Promise.all([watch(a, b, names[0]), watch(b, a, names[1])]);
  a.pipe(b);
  b.pipe(a);
  a.on("data", (chunk: Uint8Array) => (result.aToB += chunk.byteLength));
  b.on("data", (chunk: Uint8Array) => (result.bToA += chunk.byteLength));
  const done = closed.then(() => {
    if (!result.ended) result.ended = "closed";
    return result;
  });
  return { done, abort };
}
