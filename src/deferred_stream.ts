/**
 * A connected stream whose hand-over to the runtime's own event loop
 * (`adapter.adoptStream`, Bun's `Bun.connect({ fd })`) waits until the first
 * `read` or `write`. A connection closed before it carried any data (connect
 * and close, a health check) never pays for the adoption: on Bun that is an
 * asynchronous turn and about ten syscalls (fcntl, epoll_ctl, setsockopt; on
 * close SO_LINGER and epoll_ctl again). Until then it is a plain fd that
 * nobody watches, which does not keep the process alive — as an idle adopted
 * socket does not either.
 *
 * @module
 */
import type { ErrorFactory, Libc, StreamIO } from "../ffi/mod.ts";
import { SHUT_WR } from "./constants.ts";
import { check, VsockError } from "./errors.ts";

const EBADF = 9;
const EPIPE = 32;

type Adopt = (fd: number, toError: ErrorFactory) => Promise<StreamIO>;

/** See the module comment. Owns `fd`: closes it itself until adopted, through the adopted stream after. */
export class DeferredStream implements StreamIO {
  readonly #fd: number;
  readonly #libc: Libc;
  readonly #adopt: Adopt;
  readonly #toError: ErrorFactory;
  /** Set once adopted; every call goes straight to it from then on. */
  #io: StreamIO | undefined;
  #adopting: Promise<StreamIO> | undefined;
  #closed = false;

  constructor(fd: number, libc: Libc, adopt: Adopt, toError: ErrorFactory) {
    this.#fd = fd;
    this.#libc = libc;
    this.#adopt = adopt;
    this.#toError = toError;
  }

  /** Adopts once; a failed adoption closes the fd, and every later call sees the failure. */
  #stream(): Promise<StreamIO> {
    this.#adopting ??= this.#adopt(this.#fd, this.#toError).then(
      (io) => {
        if (this.#closed) io.close(); // closed while adopting: the stream owns the fd now
        this.#io = io;
        return io;
      },
      (error) => {
        this.#closed = true;
        this.#libc.close(this.#fd); // a failed adoption leaves the fd ours
        throw error;
      },
    );
    return this.#adopting;
  }

  read(into: Uint8Array): Promise<number | null> {
    if (this.#io) return this.#io.read(into);
    if (this.#closed) return Promise.resolve(null);
    return this.#stream().then((io) => io.read(into));
  }

  write(from: Uint8Array): Promise<number> {
    if (this.#io) return this.#io.write(from);
    if (this.#closed) return Promise.reject(new VsockError({ errno: EPIPE, syscall: "send" }));
    return this.#stream().then((io) => io.write(from));
  }

  closeWrite(): void {
    if (this.#io) return this.#io.closeWrite();
    if (this.#closed) throw new VsockError({ errno: EBADF, syscall: "shutdown" });
    // Not adopted yet (or adopting): the kernel takes the half-close either way.
    check(this.#libc.shutdown(this.#fd, SHUT_WR), "shutdown");
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#io) this.#io.close();
    else if (this.#adopting === undefined) this.#libc.close(this.#fd);
    // else: the adoption in flight closes the stream when it lands (see #stream).
  }
}
