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

/** See the module comment. Owns `fd` and closes it exactly once. */
export class PolledStream implements StreamIO {
  readonly #fd: number;
  readonly #reactor: Reactor;
  readonly #libc: Libc;
  #closed = false;

  constructor(fd: number, reactor: Reactor, libc: Libc) {
    this.#fd = fd;
    this.#reactor = reactor;
    this.#libc = libc;
  }

  /** Reads go straight to the kernel: nothing is queued here. */
  readonly queued = 0;

  async read(into: Uint8Array): Promise<number | null> {
    if (into.byteLength === 0) return 0;
    for (;;) {
      if (this.#closed) return null;
      const n = this.#libc.recv(this.#fd, into, 0);
      if (n > 0) return n;
      if (n === 0) return null;
      if (n === -EAGAIN) await this.#park("read");
      else if (n !== -EINTR) throw new VsockError({ errno: -n, syscall: "recv" });
    }
  }

  async write(from: Uint8Array): Promise<number> {
    for (;;) {
      if (this.#closed) throw new VsockError({ errno: EPIPE, syscall: "send" });
      if (from.byteLength === 0) return 0;
      const n = this.#libc.send(this.#fd, from, MSG_NOSIGNAL);
      if (n >= 0) return n;
      if (n === -EAGAIN) await this.#park("write");
      else if (n !== -EINTR) throw new VsockError({ errno: -n, syscall: "send" });
    }
  }

  /** Waits for `fd`'s next edge in `direction`, registering it on first use (a no-op when already registered). */
  #park(direction: Direction): Promise<void> {
    this.#reactor.register(this.#fd);
    return this.#reactor.wait(this.#fd, direction);
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
