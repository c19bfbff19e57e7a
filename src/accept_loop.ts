/**
 * The `for await` loop of every listener (`AF_VSOCK` and hybrid). Running out
 * of fds or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) does not end it:
 * `accept()` reports those, and the loop waits (5 ms, doubling to 1 s, as Go's
 * http.Server does) and accepts again once they are free, so a server rides
 * out a burst instead of stopping for good. Any other error ends the loop by
 * throwing; closing the listener ends it quietly, also during a wait.
 *
 * @module
 */
import { VsockError } from "./errors.ts";
import { EMFILE, ENFILE, ENOBUFS, ENOMEM } from "./errno.ts";

/** accept4 failures that pass once resources free up. */
const RESOURCE_ERRNOS: ReadonlySet<number> = new Set([EMFILE, ENFILE, ENOBUFS, ENOMEM]);
const RETRY_FIRST_MS = 5;
const RETRY_MAX_MS = 1000;

/** The wait between retries; the listener's `close()` calls {@link wake} to end it at once. */
export class RetryPause {
  #wake: (() => void) | undefined;

  /** Resolves after `ms`, or at once when woken. */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /** Ends a wait in progress, if any. */
  wake(): void {
    this.#wake?.();
  }
}

/** Yields what `accept()` gives until `closed()`; see the module comment for errors. */
export async function* acceptUntilClosed<C>(
  accept: () => Promise<C>,
  closed: () => boolean,
  pause: RetryPause,
): AsyncGenerator<C, void, undefined> {
  let delay = 0;
  for (;;) {
    let conn: C;
    try {
      conn = await accept();
    } catch (error) {
      if (closed()) return;
      if (!(error instanceof VsockError && RESOURCE_ERRNOS.has(error.errno))) throw error;
      delay = Math.min(delay === 0 ? RETRY_FIRST_MS : delay * 2, RETRY_MAX_MS);
      await pause.sleep(delay);
      continue;
    }
    delay = 0;
    yield conn;
  }
}
