/**
 * The error for bad command lines: the tool prints its message and the
 * command's usage on stderr and exits 2.
 *
 * @module
 */

/** A bad argument, option or endpoint. */
export class UsageError extends Error {
  /** @param message what is wrong, naming the bad part. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
