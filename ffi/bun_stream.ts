/**
 * A connected stream socket adopted into Bun's own event loop with
 * `Bun.connect({ fd })`: the runtime does the readiness work, and this class
 * turns its push callbacks into pull-style `read`/`write` with bounded
 * buffering (the socket is paused while unread data passes a high-water mark).
 *
 * @module
 */
/// <reference types="bun-types" />
import type { ConnectingStreamIO, ErrorFactory, StreamIO } from "./types.ts";

/**
 * Pause reading from the kernel once this much is waiting for `read()`. It is
 * read-ahead on top of the kernel's window (`bufferSize`), so it stays small:
 * Bun pauses after the read that passes it, so a consumer that does not read
 * holds back its peer after at most window + 64 KiB + one read.
 */
const HIGH_WATER = 64 * 1024;

const ENOTCONN = 107;

/** The parts of Bun's socket this file uses; `pause`/`resume` exist at runtime but are not all typed. */
interface BunSocket {
  write(data: Uint8Array): number;
  shutdown(halfClose?: boolean): void;
  terminate(): void;
  ref(): void;
  unref(): void;
  pause(): void;
  resume(): void;
}

interface Handlers {
  open(socket: BunSocket): void;
  data(socket: BunSocket, data: Uint8Array): void;
  drain(socket: BunSocket): void;
  end(socket: BunSocket): void;
  close(socket: BunSocket, error?: Error): void;
  error(socket: BunSocket, error: Error): void;
  connectError(socket: BunSocket, error: Error): void;
}

type AdoptFd = (options: {
  fd: number;
  allowHalfOpen: boolean;
  binaryType: "uint8array";
  socket: Handlers;
}) => Promise<BunSocket>;

/** errno from one of Bun's socket errors, when it carries one. */
function errnoOf(error: Error | undefined): number {
  const errno = (error as { errno?: unknown } | undefined)?.errno;
  return typeof errno === "number" ? Math.abs(errno) : 104; // ECONNRESET
}

class BunStream implements ConnectingStreamIO {
  #socket: BunSocket | null = null;
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #paused = false;
  #eof = false;
  #closed = false;
  #failure: Error | null = null;
  // Everyone parked, not just the latest: concurrent writes (or reads) each
  // wait, and close() must settle all of them.
  #readers: (() => void)[] = [];
  #writers: (() => void)[] = [];
  /** Whether a parked read keeps the process alive (`holdReads`); a parked write always does. */
  #readsHold = true;
  /** Whether this stream has the socket ref'd for its parked callers (see #syncRef). */
  #reffed = false;
  #toError: ErrorFactory;
  // Set while the socket's connect is under way (adoptConnectingBunStream):
  // Bun's first drain means connected, a close or error before it the failure.
  #connect: PromiseWithResolvers<void> | null;

  constructor(toError: ErrorFactory, connecting = false) {
    this.#toError = toError;
    this.#connect = connecting ? Promise.withResolvers<void>() : null;
    // A failure that lands before connected() is awaited is not an unhandled rejection.
    this.#connect?.promise.catch(() => {});
  }

  /** Settles a connect under way: `null` connected, else the errno it failed with. */
  #connectDone(errno: number | null): void {
    this.#settleConnect((connect) => {
      // A failed connect reaches Bun as a readable error, and Bun reads: recv
      // on a vsock socket that never connected says ENOTCONN, not the pending
      // error (reset or timeout), and Bun has closed the fd by now. Unknown: 0.
      if (errno !== null) return connect.reject(this.#toError(errno === ENOTCONN ? 0 : errno, "connect"));
      connect.resolve();
    });
  }

  #settleConnect(settle: (connect: PromiseWithResolvers<void>) => void): void {
    const connect = this.#connect;
    if (connect === null) return;
    this.#connect = null;
    // The socket was held referenced while connecting (see open).
    if (!this.#closed) this.#socket?.unref();
    settle(connect);
  }

  async connected(signal?: AbortSignal): Promise<void> {
    const connect = this.#connect;
    if (connect === null) return;
    const onAbort = (): void => this.#settleConnect((c) => c.reject(signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      if (signal?.aborted) onAbort();
      await connect.promise;
    } catch (error) {
      this.close();
      throw error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  get queued(): number {
    return this.#queued;
  }

  readonly handlers: Handlers = {
    open: (socket) => {
      this.#socket = socket;
      // Like Deno's own sockets: an idle connection does not keep the process
      // alive. A connect under way does, until it settles.
      if (this.#connect === null) socket.unref();
    },
    data: (socket, data) => {
      this.#chunks.push(data);
      this.#queued += data.byteLength;
      if (this.#queued >= HIGH_WATER && !this.#paused) {
        this.#paused = true;
        socket.pause();
      }
      this.#wake();
    },
    drain: () => {
      this.#connectDone(null);
      this.#wake();
    },
    end: () => {
      this.#eof = true;
      this.#wake();
    },
    close: (_socket, error) => {
      // Closed before it was ever writable: the connect failed (Bun gives its errno; ECONNRESET if none).
      this.#connectDone(errnoOf(error));
      if (error && !this.#closed) this.#failure ??= this.#toError(errnoOf(error), "recv");
      this.#eof = true;
      this.#closed = true;
      this.#wake();
    },
    error: (_socket, error) => {
      this.#connectDone(errnoOf(error));
      this.#failure ??= this.#toError(errnoOf(error), "recv");
      this.#wake();
    },
    connectError: (_socket, error) => {
      this.#connectDone(errnoOf(error));
      this.#failure ??= this.#toError(errnoOf(error), "connect");
    },
  };

  #wake(): void {
    // Every data/drain callback lands here, mostly with nobody parked: no arrays made then.
    if (this.#readers.length === 0 && this.#writers.length === 0) return;
    const woken = this.#readers.concat(this.#writers);
    this.#readers = [];
    this.#writers = [];
    this.#syncRef();
    for (const wake of woken) wake();
  }

  /**
   * Refs the socket while a parked caller should keep the process alive (a
   * write, or a read unless `holdReads(false)`), and unrefs it otherwise. A
   * connect under way holds its own ref (open, #settleConnect).
   */
  #syncRef(): void {
    const want = !this.#closed && (this.#writers.length > 0 || (this.#readsHold && this.#readers.length > 0));
    if (want === this.#reffed) return;
    this.#reffed = want;
    if (want) this.#socket?.ref();
    else if (!this.#closed) this.#socket?.unref(); // terminate() has let go of it already
  }

  /** Waits for the next callback; see #syncRef for the process's lifetime meanwhile. */
  #park(slot: "reader" | "writer"): Promise<void> {
    return new Promise<void>((resolve) => {
      (slot === "reader" ? this.#readers : this.#writers).push(resolve);
      this.#syncRef();
    });
  }

  holdReads(on: boolean): void {
    this.#readsHold = on;
    this.#syncRef();
  }

  async read(into: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#chunks.length > 0) return this.#take(into);
      if (this.#failure && !this.#eof) throw this.#failure;
      if (this.#eof || this.#closed) return null;
      await this.#park("reader");
    }
  }

  #take(into: Uint8Array): number {
    let n = 0;
    while (n < into.byteLength && this.#chunks.length > 0) {
      const head = this.#chunks[0];
      const take = Math.min(head.byteLength, into.byteLength - n);
      into.set(take === head.byteLength ? head : head.subarray(0, take), n);
      n += take;
      if (take === head.byteLength) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(take);
    }
    this.#queued -= n;
    if (this.#paused && this.#queued < HIGH_WATER / 2 && !this.#closed) {
      this.#paused = false;
      this.#socket?.resume();
    }
    return n;
  }

  async write(from: Uint8Array): Promise<number> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      const socket = this.#socket;
      if (this.#closed || !socket) throw this.#toError(32, "send"); // EPIPE
      if (from.byteLength === 0) return 0;
      const n = socket.write(from);
      if (n > 0) return n;
      if (n < 0) throw this.#failure ?? this.#toError(32, "send");
      await this.#park("writer");
    }
  }

  closeWrite(): void {
    if (this.#closed) throw this.#toError(9, "shutdown"); // EBADF
    // No argument: SHUT_WR. (`shutdown(true)` would stop *reading*.)
    this.#socket?.shutdown();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks = [];
    this.#queued = 0;
    // terminate() closes the fd inside Bun, exactly once.
    this.#socket?.terminate();
    this.#wake();
  }
}

/**
 * Adopts a stream socket whose non-blocking connect is still under way: Bun's
 * loop reports when it is done (the first drain) or failed (a close, with the
 * errno Bun read), so the connect needs no reactor registration and no waiter
 * hand-off (measured in the test VM: 1.2-1.4x the connects per second at
 * 0.75-0.85x the CPU per connect). Bun owns the fd afterwards.
 */
export function adoptConnectingBunStream(fd: number, toError: ErrorFactory): Promise<ConnectingStreamIO> {
  return adopt(fd, new BunStream(toError, true));
}

/** Adopts a connected stream socket fd into Bun's event loop. Bun owns the fd afterwards. */
export function adoptBunStream(fd: number, toError: ErrorFactory): Promise<StreamIO> {
  return adopt(fd, new BunStream(toError));
}

/** `Bun.connect({ fd })` with `stream`'s handlers; resolves with `stream` (no async frame: every connect passes here). */
function adopt(fd: number, stream: BunStream): Promise<BunStream> {
  // bun-types declares FdSocketOptions but no overload of Bun.connect takes it.
  const connect = Bun.connect as unknown as AdoptFd;
  try {
    return connect({ fd, allowHalfOpen: true, binaryType: "uint8array", socket: stream.handlers }).then(() => stream);
  } catch (error) {
    return Promise.reject(error); // a throw, as from an async function: the caller closes the fd
  }
}
