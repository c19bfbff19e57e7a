/**
 * `listen()` and `VsockListener`: a bound, listening vsock socket (stream or
 * seqpacket) whose accepts run through the reactor.
 *
 * @module
 */
import { VsockAddr } from "./addr.ts";
import { acceptUntilClosed, RetryPause } from "./accept_loop.ts";
import { adoptedListenerFd } from "./adopt_fd.ts";
import { SOCKADDR_VM_SIZE, VMADDR_CID_ANY, VMADDR_PORT_ANY } from "./constants.ts";
import type { VsockConn } from "./conn.ts";
import { check, closedError, VsockError } from "./errors.ts";
import { applyOptions, type SocketOptions, validateOptions } from "./options.ts";
import type { VsockSeqpacketConn } from "./seqpacket.ts";
import { acceptOnce, getReactor, libc, parseType, socketAddress, type SocketType, vsockSocket } from "./socket.ts";
import { VsockSocket } from "./vsock_socket.ts";
import { wrapConnected } from "./wrap.ts";
import { isHybridString } from "./hybrid/addr.ts";
import { type HybridListener, type HybridListenOptions, listenHybrid } from "./hybrid/listen.ts";
import { EAGAIN, ECONNABORTED, EINTR, EPROTO } from "./errno.ts";

/** Backlog when none is given: room for bursts of connects (the kernel caps it at `somaxconn`). */
const DEFAULT_BACKLOG = 1024;

/** An accepted connection's fd and both ends' addresses ({@link acceptFd}). */
export interface AcceptedFd {
  fd: number;
  local: VsockAddr;
  remote: VsockAddr;
}

/**
 * The listener's next connection as its fd and addresses, before it becomes
 * a connection object: `accept()` wraps it, `serve()` hands it to the
 * runtime's own `node:net` where it can. The caller owns the fd.
 */
export async function acceptFd(listener: VsockListener<VsockConn | VsockSeqpacketConn>): Promise<AcceptedFd> {
  const peer = new Uint8Array(SOCKADDR_VM_SIZE);
  const peerLength = new Uint32Array(1);
  const loop = getReactor();
  for (;;) {
    if (listener.closed) throw closedError("accept", "listener", listener.addr);
    const fd = acceptOnce(listener.fd, peer, peerLength);
    if (fd >= 0) return addresses(fd, peer.subarray(0, peerLength[0]));
    if (fd === -EAGAIN) await loop.wait(listener.fd, "read");
    else if (fd !== -EINTR && fd !== -ECONNABORTED && fd !== -EPROTO) {
      throw new VsockError({ errno: -fd, syscall: "accept4", address: listener.addr });
    }
  }
}

/** The addresses of a just-accepted `fd` (`peer` from `accept4`); on failure the fd is closed. */
function addresses(fd: number, peer: Uint8Array): AcceptedFd {
  try {
    return { fd, remote: VsockAddr.fromBytes(peer), local: socketAddress(fd, "getsockname") };
  } catch (error) {
    libc.close(fd);
    throw error;
  }
}

/** Options for {@link listen}. */
export interface ListenOptions extends SocketOptions {
  /** The CID to bind; default `VMADDR_CID_ANY` (every transport). */
  cid?: number;
  /** The port to bind; default `VMADDR_PORT_ANY` (the kernel picks; read it from `listener.addr`). */
  port?: number;
  /** Pending-connection queue length; default 1024. */
  backlog?: number;
  /** `"stream"` (default) or `"seqpacket"` for message connections. */
  type?: SocketType;
  /**
   * Adopt this already-bound (or already-listening) AF_VSOCK socket instead
   * of making one, e.g. from systemd socket activation (see `listenFds()`).
   * It is checked to be AF_VSOCK and of `type`; the listener owns it from then on.
   */
  fd?: number;
  /** Only for hybrid vsock ({@link HybridListenOptions}). */
  uds?: never;
}

/**
 * A listening vsock socket. Accept with `accept()` or `for await`. `close()`
 * settles a pending `accept()` at once (rejecting with `EBADF`) and ends a
 * `for await` loop. Accepted sockets inherit the listener's vsock options.
 *
 * @example
 * ```ts
 * using listener = listen({ port: 5000 });
 * for await (const conn of listener) {
 *   conn.readable.pipeTo(conn.writable); // echo
 * }
 * ```
 */
export class VsockListener<C extends VsockConn | VsockSeqpacketConn = VsockConn> extends VsockSocket
  implements AsyncIterable<C> {
  /** The bound address as the kernel reports it (the real port when PORT_ANY was asked for). */
  readonly addr: VsockAddr;
  /** What `accept()` yields: `"stream"` → `VsockConn`, `"seqpacket"` → `VsockSeqpacketConn`. */
  readonly type: SocketType;

  /** @internal Made by {@link listen}. */
  constructor(fd: number, addr: VsockAddr, type: SocketType) {
    super(fd, "listener");
    this.addr = addr;
    this.type = type;
  }

  /** Errors name the bound address. */
  protected get errorAddress(): VsockAddr {
    return this.addr;
  }

  /** Waits for the next connection. */
  async accept(): Promise<C> {
    const { fd, local, remote } = await acceptFd(this);
    return await wrapConnected(fd, this.type, local, remote) as C;
  }

  /** Stops listening and closes the socket. A second call does nothing. */
  close(): void {
    if (!this.markClosed()) return;
    getReactor().unregister(this.fd); // wakes pending accepts, which then see the listener closed
    libc.close(this.fd);
    this.#pause.wake(); // and a for await loop waiting for fds to free up
  }

  readonly #pause = new RetryPause();

  /**
   * Yields connections until the listener is closed. Running out of fds or
   * memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) does not end the loop: it
   * waits (5 ms doubling to 1 s) and accepts again once they are free; any
   * other error ends it by throwing.
   */
  [Symbol.asyncIterator](): AsyncGenerator<C, void, undefined> {
    return acceptUntilClosed(() => this.accept(), () => this.closed, this.#pause);
  }
}

function parseOptions(
  options: ListenOptions | string,
): { address: VsockAddr; backlog: number; type: SocketType; fd?: number } {
  if (typeof options === "string") {
    return { address: VsockAddr.parse(options), backlog: DEFAULT_BACKLOG, type: "stream" };
  }
  if (options === null || typeof options !== "object") {
    throw new TypeError("listen() takes an options object or a vsock address string");
  }
  const backlog = options.backlog ?? DEFAULT_BACKLOG;
  if (!Number.isInteger(backlog) || backlog < 0) {
    throw new RangeError(`listen() backlog must be a non-negative integer, got ${String(backlog)}`);
  }
  if (options.fd !== undefined && (!Number.isInteger(options.fd) || options.fd < 0)) {
    throw new TypeError(`listen() fd must be a file descriptor number, got ${String(options.fd)}`);
  }
  validateOptions(options);
  return {
    address: new VsockAddr(options.cid ?? VMADDR_CID_ANY, options.port ?? VMADDR_PORT_ANY),
    backlog,
    type: parseType(options.type),
    fd: options.fd,
  };
}

/**
 * Binds and listens, synchronously like `Deno.listen`. Defaults to any CID,
 * a kernel-chosen port and stream connections; `listener.addr` reports what
 * was bound. Fails with `EADDRINUSE` when the port is taken.
 *
 * @example
 * ```ts
 * const listener = listen({ port: VMADDR_PORT_ANY });
 * console.log(listener.addr.port); // the port the kernel picked
 * const messages = listen({ port: 5001, type: "seqpacket", bufferSize: 64 * 1024 });
 * ```
 *
 * With `{ uds, port }` or `"unix:///run/vm1/v.sock?port=1234"` it listens for
 * connections guests make to host port `port` through a Firecracker / Cloud
 * Hypervisor VMM (hybrid vsock): on the Unix socket `${uds}_${port}`, see
 * {@link HybridListener}.
 */
export function listen(options: HybridListenOptions | `unix:${string}`): HybridListener;
export function listen(options: ListenOptions & { type: "seqpacket" }): VsockListener<VsockSeqpacketConn>;
export function listen(options?: (ListenOptions & { type?: "stream" }) | `vsock://${string}`): VsockListener<VsockConn>;
export function listen(address: string): VsockListener<VsockConn> | HybridListener;
export function listen(
  options: ListenOptions | HybridListenOptions | string = {},
): VsockListener<VsockConn | VsockSeqpacketConn> | HybridListener {
  if (
    typeof options === "string"
      ? isHybridString(options)
      : typeof options === "object" && options !== null && "uds" in options
  ) {
    return listenHybrid(options as HybridListenOptions | string);
  }
  return listenVsock(options as ListenOptions | string);
}

function listenVsock(options: ListenOptions | string): VsockListener<VsockConn | VsockSeqpacketConn> {
  const { address, backlog, type, fd: given } = parseOptions(options);
  if (given !== undefined) return adoptListener(given, type, backlog, options as ListenOptions);
  const fd = vsockSocket(type, address);
  try {
    if (typeof options === "object") applyOptions(fd, options);
    check(libc.bind(fd, address.toBytes()), "bind", address);
    check(libc.listen(fd, backlog), "listen", address);
    getReactor().register(fd);
    return new VsockListener(fd, socketAddress(fd, "getsockname"), type);
  } catch (error) {
    getReactor().unregister(fd);
    libc.close(fd);
    throw error;
  }
}

/** `listen({ fd })`: checks and takes over a socket someone else bound. */
function adoptListener(
  fd: number,
  type: SocketType,
  backlog: number,
  options: SocketOptions,
): VsockListener<VsockConn | VsockSeqpacketConn> {
  const listening = adoptedListenerFd(fd, type);
  const bound = socketAddress(fd, "getsockname");
  if (!listening) check(libc.listen(fd, backlog), "listen", bound);
  applyOptions(fd, options);
  getReactor().register(fd);
  return new VsockListener(fd, bound, type);
}
