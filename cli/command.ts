/**
 * The shape of one subcommand, and option parsing shared by all of them.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { BUSY_POLL_MAX_US } from "../src/polled_stream.ts";
import type { Endpoint } from "./endpoint.ts";
import { UsageError } from "./usage_error.ts";

/** One subcommand of `vsock`. */
export interface Command {
  /** Its name on the command line. */
  name: string;
  /** One line for the overview. */
  summary: string;
  /** The full `--help` text. */
  usage: string;
  /** Runs it on the arguments after its name; resolves to the exit code. Throws {@link UsageError} on bad arguments. */
  run(args: string[]): Promise<number>;
}

/** The parsed options: strings, booleans and repeated strings. */
export type Values = Record<string, string | boolean | string[] | undefined>;

/** `parseArgs` with `--help`, strict, and its errors turned into {@link UsageError}s. */
export function parseCommand(
  args: string[],
  options: NonNullable<ParseArgsConfig["options"]>,
): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Values, positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Checks the count of positional arguments. */
export function expectPositionals(positionals: string[], names: string[]): void {
  if (positionals.length < names.length) throw new UsageError(`missing ${names.slice(positionals.length).join(" ")}`);
  if (positionals.length > names.length) {
    throw new UsageError(`unexpected argument "${positionals[names.length]}"`);
  }
}

/** A non-negative integer option (`what` names it in the error), or `undefined` when absent. */
export function intOption(value: unknown, what: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  if (!/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${what} must be an integer >= ${min}, got "${text}"`);
  }
  return Number(text);
}

/**
 * `--busy-poll US` for the connection dialed to `endpoint` (`connect()`'s `busyPoll`): an integer
 * up to `BUSY_POLL_MAX_US`, and only for a vsock or hybrid vsock endpoint, where the option exists.
 */
export function busyPollOption(value: unknown, endpoint: Endpoint): number | undefined {
  const us = intOption(value, "--busy-poll");
  if (us === undefined) return undefined;
  if (us > BUSY_POLL_MAX_US) {
    throw new UsageError(`--busy-poll must be at most ${BUSY_POLL_MAX_US} microseconds, got ${us}`);
  }
  if (endpoint.kind !== "vsock" && endpoint.kind !== "hybrid") {
    throw new UsageError(`--busy-poll applies to a vsock: or hybrid unix:///PATH?port=N target, not ${endpoint.kind}:`);
  }
  return us;
}

/** An error's errno name and message, for log lines. */
export function errorText(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const message = e?.message ?? String(error);
  return e?.code && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}
