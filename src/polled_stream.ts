/**
 * A connected stream socket driven by the reactor: `recv`/`send` run
 * synchronously on the JS thread (errno read at once), and only an `EAGAIN`
 * parks the caller until the next readiness edge. The fd joins the reactor's
 * epoll set at its first `EAGAIN`, not before: a connection that never waits
 * (connect and close, a request answered at once) costs no `epoll_ctl` at all.
 * Adding an fd reports its present readiness, so an edge between the `EAGAIN`
 * and the registration is not lost.
 *
 * @module
 */
import type { Libc, StreamIO } from "../ffi/mod.ts";
import { MSG_NOSIGNAL, SHUT_WR } from "./constants.ts";
import { check, VsockError } from "./errors.ts";
import type { Direction, Reactor } from "./reactor.ts";
import { EAGAIN, EBADF, EINTR, EPIPE } from "./errno.ts";

/** The largest `busyPoll` window, µs: one second of a spinning event loop. */
export const BUSY_POLL_MAX_US = 1_000_000;

/** Checks `connect()`'s `busyPoll` option (µs, 0 = off) before any socket exists. */
export function checkBusyPoll(value: unknown): number {
  if (value === undefined) return 0;
  if (!(typeof value === "number" && value >= 0 && value <= BUSY_POLL_MAX_US)) {
    throw new RangeError(`connect() busyPoll must be between 0 and 1,000,000 microseconds, got ${String(value)}`);
  }
  return value;
}

/** See the module comment. Owns `fd` and closes it exactly once. */
export class PolledStream implements StreamIO {
  readonly #fd: number;
  readonly #reactor: Reactor;
  readonly #libc: Libc;
  readonly #busyPollMs: number;
  #closed = false;
  #readsHold = true;
  /** A send happened since the last read returned data: the peer's answer is due (see `busyPoll` in `ConnectOptions`). */
  #answerDue = false;

  constructor(fd: number, reactor: Reactor, libc: Libc, busyPollUs = 0) {
    this.#fd = fd;
    this.#reactor = reactor;
    this.#libc = libc;
    this.#busyPollMs = busyPollUs / 1000;
  }

  /** Reads go straight to the kernel: nothing is queued here. */
  readonly queued = 0;

  async read(into: Uint8Array): Promise<number | null> {
    if (into.byteLength === 0) return 0;
    for (;;) {
      if (this.#closed) return null;
      let n = this.#libc.recv(this.#fd, into, 0);
      if (n === -EAGAIN && this.#answerDue && this.#busyPollMs > 0) n = this.#busyPoll(into);
      if (n > 0) {
        this.#answerDue = false;
        return n;
      }
      if (n === 0) return null;
      if (n === -EAGAIN) await this.#park("read");
      else if (n !== -EINTR) throw new VsockError({ errno: -n, syscall: "recv" });
    }
  }

  async write(from: Uint8Array): Promise<number> {
    for (;;) {
      if (this.#closed) throw new VsockError({ errno: EPIPE, syscall: "send" });
      if (from.byteLength === 0) return 0;
      let n = this.#libc.send(this.#fd, from, MSG_NOSIGNAL);
      // A vsock receiver frees its whole window in one credit update: a writer spinning then refills it at once,
      // where a parked one leaves the peer idle for a hand-off.
      if (n === -EAGAIN && this.#busyPollMs > 0) n = this.#spin(() => this.#libc.send(this.#fd, from, MSG_NOSIGNAL));
      if (n >= 0) {
        this.#answerDue = true;
        return n;
      }
      if (n === -EAGAIN) await this.#park("write");
      else if (n !== -EINTR) throw new VsockError({ errno: -n, syscall: "send" });
    }
  }

  /**
   * Retries `recv` on the JS thread for up to the busy-poll window, once per
   * send: on Deno and Node a park costs a hand-off to a waiter thread and back
   * (~340 µs measured in the test VM) while a peer's answer often lands sooner.
   * A miss leaves `#answerDue` off, so the next read parks at once.
   */
  #busyPoll(into: Uint8Array): number {
    this.#answerDue = false;
    return this.#spin(() => this.#libc.recv(this.#fd, into, 0));
  }

  /** Retries `op` while it returns `EAGAIN`, for up to the busy-poll window; returns its last result. */
  #spin(op: () => number): number {
    const until = performance.now() + this.#busyPollMs;
    let n: number;
    do n = op(); while (n === -EAGAIN && performance.now() < until);
    return n;
  }

  /** Waits for `fd`'s next edge in `direction`, registering it on first use (a no-op when already registered). */
  #park(direction: Direction): Promise<void> {
    this.#reactor.register(this.#fd);
    if (!this.#readsHold) this.#reactor.holdReads(this.#fd, false); // a registration starts out holding
    return this.#reactor.wait(this.#fd, direction);
  }

  holdReads(on: boolean): void {
    this.#readsHold = on;
    if (!this.#closed) this.#reactor.holdReads(this.#fd, on);
  }

  closeWrite(): void {
    if (this.#closed) throw new VsockError({ errno: EBADF, syscall: "shutdown" });
    check(this.#libc.shutdown(this.#fd, SHUT_WR), "shutdown");
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Unregister first (a no-op if it never waited): parked readers wake, see #closed, and never touch the fd number again.
    this.#reactor.unregister(this.#fd);
    this.#libc.close(this.#fd);
  }
}
