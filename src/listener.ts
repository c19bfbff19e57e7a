/**
 * `listen()` and `VsockListener`: a bound, listening vsock stream socket
 * whose accepts run through the reactor.
 *
 * @module
 */
import { VsockAddr } from "./addr.ts";
import { SOCK_CLOEXEC, SOCK_NONBLOCK, SOCKADDR_VM_SIZE, VMADDR_CID_ANY, VMADDR_PORT_ANY } from "./constants.ts";
import { VsockConn } from "./conn.ts";
import { check, closedError, VsockError } from "./errors.ts";
import { getReactor, libc, openStream, socketAddress, streamSocket } from "./socket.ts";

const EINTR = 4;
const EAGAIN = 11;
const EPROTO = 71;
const ECONNABORTED = 103;

/** Backlog when none is given: room for bursts of connects (the kernel caps it at `somaxconn`). */
const DEFAULT_BACKLOG = 1024;

/** Options for {@link listen}. */
export interface ListenOptions {
  /** The CID to bind; default `VMADDR_CID_ANY` (every transport). */
  cid?: number;
  /** The port to bind; default `VMADDR_PORT_ANY` (the kernel picks; read it from `listener.addr`). */
  port?: number;
  /** Pending-connection queue length; default 1024. */
  backlog?: number;
}

/**
 * A listening vsock stream socket. Accept with `accept()` or `for await`.
 * `close()` settles a pending `accept()` at once (rejecting with `EBADF`) and
 * ends a `for await` loop.
 *
 * @example
 * ```ts
 * using listener = listen({ port: 5000 });
 * for await (const conn of listener) {
 *   conn.readable.pipeTo(conn.writable); // echo
 * }
 * ```
 */
export class VsockListener implements AsyncIterable<VsockConn>, Disposable {
  /** The bound address as the kernel reports it (the real port when PORT_ANY was asked for). */
  readonly addr: VsockAddr;
  readonly #fd: number;
  #closed = false;

  /** @internal Made by {@link listen}. */
  constructor(fd: number, addr: VsockAddr) {
    this.#fd = fd;
    this.addr = addr;
  }

  /** Waits for the next connection. */
  async accept(): Promise<VsockConn> {
    const peer = new Uint8Array(SOCKADDR_VM_SIZE);
    const peerLength = new Uint32Array(1);
    const loop = getReactor();
    for (;;) {
      if (this.#closed) throw closedError("accept", "listener", this.addr);
      peerLength[0] = SOCKADDR_VM_SIZE;
      const fd = libc.accept4(this.#fd, peer, peerLength, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) return await this.#wrap(fd, peer.subarray(0, peerLength[0]));
      if (fd === -EAGAIN) await loop.wait(this.#fd, "read");
      else if (fd !== -EINTR && fd !== -ECONNABORTED && fd !== -EPROTO) {
        throw new VsockError({ errno: -fd, syscall: "accept4", address: this.addr });
      }
    }
  }

  async #wrap(fd: number, peer: Uint8Array): Promise<VsockConn> {
    let local: VsockAddr;
    let remote: VsockAddr;
    try {
      remote = VsockAddr.fromBytes(peer);
      local = socketAddress(fd, "getsockname");
    } catch (error) {
      libc.close(fd);
      throw error;
    }
    return new VsockConn(await openStream(fd), local, remote);
  }

  /** Stops listening and closes the socket. A second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    getReactor().unregister(this.#fd); // wakes pending accepts, which then see #closed
    libc.close(this.#fd);
  }

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Yields connections until the listener is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<VsockConn, void, undefined> {
    for (;;) {
      try {
        yield await this.accept();
      } catch (error) {
        if (this.#closed) return;
        throw error;
      }
    }
  }
}

function parseOptions(options: ListenOptions | string): { address: VsockAddr; backlog: number } {
  if (typeof options === "string") return { address: VsockAddr.parse(options), backlog: DEFAULT_BACKLOG };
  if (options === null || typeof options !== "object") {
    throw new TypeError("listen() takes an options object or a vsock address string");
  }
  const backlog = options.backlog ?? DEFAULT_BACKLOG;
  if (!Number.isInteger(backlog) || backlog < 0) {
    throw new RangeError(`listen() backlog must be a non-negative integer, got ${String(backlog)}`);
  }
  return { address: new VsockAddr(options.cid ?? VMADDR_CID_ANY, options.port ?? VMADDR_PORT_ANY), backlog };
}

/**
 * Binds and listens, synchronously like `Deno.listen`. Defaults to any CID
 * and a kernel-chosen port; `listener.addr` reports what was bound.
 * Fails with `EADDRINUSE` when the port is taken.
 *
 * @example
 * ```ts
 * const listener = listen({ port: VMADDR_PORT_ANY });
 * console.log(listener.addr.port); // the port the kernel picked
 * ```
 */
export function listen(options: ListenOptions | string = {}): VsockListener {
  const { address, backlog } = parseOptions(options);
  const fd = streamSocket(address);
  try {
    check(libc.bind(fd, address.toBytes()), "bind", address);
    check(libc.listen(fd, backlog), "listen", address);
    const bound = socketAddress(fd, "getsockname");
    getReactor().register(fd);
    return new VsockListener(fd, bound);
  } catch (error) {
    libc.close(fd);
    throw error;
  }
}
