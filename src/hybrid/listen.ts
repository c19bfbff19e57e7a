/**
 * Guest-initiated hybrid vsock: when a guest dials host port P, the VMM
 * connects to the Unix socket `<uds>_<P>` and bridges, with no preamble
 * (Firecracker docs/vsock.md "Guest-Initiated Connections"; nothing listening
 * there means the guest's connect is reset). `listen({ uds, port })` listens
 * on that path and yields the same `VsockConn` as an `AF_VSOCK` listener.
 *
 * The socket file: a leftover from a crashed process (not listed as listening
 * in /proc/net/unix, and nothing answers a connect to it) is removed before
 * binding; a file someone listens on, or a file that is not a socket, is
 * never touched (`EADDRINUSE`). `close()`
 * removes the file only if it is still the one this listener bound.
 *
 * @module
 */
import { closeSync, lstatSync, openSync, readSync, unlinkSync } from "node:fs";
import { VMADDR_PORT_ANY } from "../constants.ts";
import { acceptUntilClosed, RetryPause } from "../accept_loop.ts";
import { VsockConn } from "../conn.ts";
import { check, closedError, VsockError } from "../errors.ts";
import { acceptOnce, getReactor, libc, openStream } from "../socket.ts";
import { VsockSocket } from "../vsock_socket.ts";
import { HybridAddr, SOCKADDR_UN_SIZE, sockaddrUn } from "./addr.ts";
import { unixSocket } from "./connect.ts";
import { EADDRINUSE, EAGAIN, ECONNABORTED, ECONNREFUSED, EINPROGRESS, EINTR, EPROTO } from "../errno.ts";

const DEFAULT_BACKLOG = 1024;

/** Options for `listen()` on a VMM's vsock Unix socket (guest → host connections). */
export interface HybridListenOptions {
  /** The VMM's vsock Unix socket (`uds_path`); the listener's file is `${uds}_${port}`. */
  uds: string;
  /** The host port guests dial (vsock CID 2, this port). */
  port: number;
  /** Pending-connection queue length; default 1024. */
  backlog?: number;
  /** Hybrid vsock carries byte streams only. */
  type?: "stream";
  /** Not for hybrid addresses. */
  cid?: never;
}

/** Which file a listener made: its identity, so `close()` removes that file and no other. */
interface FileId {
  dev: number;
  ino: number;
}

function fileId(path: string): FileId | undefined {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  return stat ? { dev: stat.dev, ino: stat.ino } : undefined;
}

/**
 * A listener for connections guests make to a host port through a VMM's
 * vsock Unix socket. Accept with `accept()` or `for await`; `close()` ends
 * them and removes the socket file (if it is still this listener's).
 *
 * @example
 * ```ts
 * using listener = listen({ uds: "/run/vm1/v.sock", port: 1234 }); // listens on /run/vm1/v.sock_1234
 * for await (const conn of listener) conn.readable.pipeTo(conn.writable);
 * ```
 */
export class HybridListener extends VsockSocket implements AsyncIterable<VsockConn<HybridAddr>> {
  /** The VMM socket and the host port guests dial. */
  readonly addr: HybridAddr;
  /** The Unix socket file this listener bound: `addr.listenPath`. */
  readonly path: string;
  readonly #file: FileId | undefined;

  /** @internal Made by `listen({ uds, port })`. */
  constructor(fd: number, addr: HybridAddr) {
    super(fd, "listener");
    this.addr = addr;
    this.path = addr.listenPath;
    this.#file = fileId(this.path);
  }

  /** Errors name the listener's address. */
  protected get errorAddress(): HybridAddr {
    return this.addr;
  }

  /** Waits for the next connection from a guest. */
  async accept(): Promise<VsockConn<HybridAddr>> {
    const peer = new Uint8Array(SOCKADDR_UN_SIZE);
    const peerLength = new Uint32Array(1);
    const loop = getReactor();
    for (;;) {
      if (this.closed) throw closedError("accept", "listener", this.addr);
      const fd = acceptOnce(this.fd, peer, peerLength);
      if (fd >= 0) {
        // The VMM does not say which guest port dialed: the remote port is unknown.
        return new VsockConn(await openStream(fd), fd, this.addr, new HybridAddr(this.addr.path, VMADDR_PORT_ANY));
      }
      if (fd === -EAGAIN) await loop.wait(this.fd, "read");
      else if (fd !== -EINTR && fd !== -ECONNABORTED && fd !== -EPROTO) {
        throw new VsockError({ errno: -fd, syscall: "accept4", address: this.addr });
      }
    }
  }

  /** Stops listening, closes the socket and removes its file if it is still this listener's. */
  close(): void {
    if (!this.markClosed()) return;
    getReactor().unregister(this.fd); // wakes pending accepts, which then see the listener closed
    libc.close(this.fd);
    this.#pause.wake(); // and a for await loop waiting for fds to free up
    const now = fileId(this.path);
    if (now && this.#file && now.dev === this.#file.dev && now.ino === this.#file.ino) {
      try {
        unlinkSync(this.path);
      } catch { /* already gone or not ours to remove: nothing was lost */ }
    }
  }

  readonly #pause = new RetryPause();

  /**
   * Yields connections until the listener is closed; running out of fds or
   * memory does not end the loop (it waits and accepts again), any other
   * error does, by throwing.
   */
  [Symbol.asyncIterator](): AsyncGenerator<VsockConn<HybridAddr>, void, undefined> {
    return acceptUntilClosed(() => this.accept(), () => this.closed, this.#pause);
  }
}

function inUse(address: HybridAddr, why: string): VsockError {
  return new VsockError({
    errno: EADDRINUSE,
    syscall: "bind",
    address,
    message: `hybrid vsock listen on ${address.listenPath} failed: ${why} (EADDRINUSE)`,
  });
}

/**
 * Reads a procfs file to its end. procfs reports size 0 and hands out about a
 * page per `read`, so read until 0 rather than trusting any size.
 */
function readProcFile(path: string): string {
  const fd = openSync(path, "r");
  try {
    const chunks: Uint8Array[] = [];
    for (;;) {
      const chunk = new Uint8Array(65536);
      const n = readSync(fd, chunk, 0, chunk.byteLength, null);
      if (n <= 0) break;
      chunks.push(chunk.subarray(0, n));
    }
    return new TextDecoder().decode(concatBytes(chunks));
  } finally {
    closeSync(fd);
  }
}

function concatBytes(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** `__SO_ACCEPTCON` in /proc/net/unix's Flags column: the socket listens. */
const SO_ACCEPTCON = 0x10000;

/**
 * Whether /proc/net/unix lists a listening socket bound to `path`: asks
 * without connecting, so a live listener gets no stray connection. It shows
 * only this network namespace's sockets, hence the connect probe after it.
 */
function listedAsListening(path: string): boolean {
  let table: string;
  try {
    table = readProcFile("/proc/net/unix");
  } catch {
    return false;
  }
  // "Num RefCount Protocol Flags Type St Inode Path": the path is everything after the 7th field.
  for (const line of table.split("\n")) {
    const match = /^\S+ \S+ \S+ ([0-9A-Fa-f]+) \S+ \S+ \S+ (.*)$/.exec(line);
    if (match && match[2] === path && (parseInt(match[1], 16) & SO_ACCEPTCON) !== 0) return true;
  }
  return false;
}

/**
 * Removes `path` if it is a socket file nobody listens on (a crashed
 * listener's leftover). A live listener's file or a non-socket is left alone.
 */
function removeStale(address: HybridAddr): void {
  const path = address.listenPath;
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isSocket()) throw inUse(address, `${path} exists and is not a socket; not removing it`);
  if (listedAsListening(path)) throw inUse(address, `a socket is listening on ${path} (/proc/net/unix)`);
  // Not listed: stale, or a listener in another network namespace sharing this filesystem. Only a
  // connect tells them apart (the latter then sees one connection that closes at once).
  const probe = unixSocket(address);
  let r: number;
  try {
    const sockaddr = sockaddrUn(path);
    do r = libc.connect(probe, sockaddr); while (r === -EINTR);
  } finally {
    libc.close(probe);
  }
  // Connected, or its accept queue is full: somebody is listening there.
  if (r === 0 || r === -EAGAIN || r === -EINPROGRESS) {
    throw inUse(address, `a socket is listening on ${path} (it answered a connect)`);
  }
  if (r !== -ECONNREFUSED) throw new VsockError({ errno: -r, syscall: "connect", address });
  unlinkSync(path);
}

function parseOptions(options: HybridListenOptions | string): { address: HybridAddr; backlog: number } {
  if (typeof options === "string") return { address: checkedPort(HybridAddr.parse(options)), backlog: DEFAULT_BACKLOG };
  const record = options as unknown as Record<string, unknown>;
  for (const key of ["cid", "fd", "bufferSize", "bufferMinSize", "bufferMaxSize", "connectTimeout"]) {
    if (record[key] !== undefined) {
      throw new TypeError(`listen() option "${key}" does not apply to hybrid vsock (uds)`);
    }
  }
  if (record.type !== undefined && record.type !== "stream") {
    throw new TypeError(`hybrid vsock carries streams only; type must be "stream", got ${String(record.type)}`);
  }
  const backlog = options.backlog ?? DEFAULT_BACKLOG;
  if (!Number.isInteger(backlog) || backlog < 0) {
    throw new RangeError(`listen() backlog must be a non-negative integer, got ${String(backlog)}`);
  }
  return { address: checkedPort(new HybridAddr(options.uds, options.port)), backlog };
}

function checkedPort(address: HybridAddr): HybridAddr {
  if (address.port === VMADDR_PORT_ANY) {
    throw new RangeError(`hybrid vsock listen needs a host port, not VMADDR_PORT_ANY (${address.toString()})`);
  }
  // The file name must fit sun_path too (checks its length now, with a RangeError).
  sockaddrUn(address.listenPath);
  return address;
}

/** See `listen()`: the hybrid vsock branch. Synchronous, like the `AF_VSOCK` one. */
export function listenHybrid(options: HybridListenOptions | string): HybridListener {
  const { address, backlog } = parseOptions(options);
  removeStale(address);
  const fd = unixSocket(address);
  let bound = false;
  try {
    const r = libc.bind(fd, sockaddrUn(address.listenPath));
    if (r === -EADDRINUSE) throw inUse(address, `${address.listenPath} appeared meanwhile`);
    check(r, "bind", address);
    bound = true;
    check(libc.listen(fd, backlog), "listen", address);
    getReactor().register(fd);
    return new HybridListener(fd, address);
  } catch (error) {
    getReactor().unregister(fd);
    libc.close(fd);
    if (bound) unlinkSync(address.listenPath); // we made it a moment ago
    throw error;
  }
}
