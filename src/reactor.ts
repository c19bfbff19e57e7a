/**
 * The readiness reactor: one epoll set per process, one `epoll_wait` in flight
 * at a time (off the JS thread, via the adapter), and an eventfd to wake it.
 *
 * Sockets are registered edge-triggered for both directions once. Callers
 * always try the syscall first and park here only after `EAGAIN`; an edge can
 * only follow that `EAGAIN`, and its dispatch runs in a later task than the
 * parking, so no wake-up is lost. Spurious wake-ups are fine: callers retry.
 *
 * While nobody is parked no wait is in flight, so an idle program can exit.
 * Reads parked on an fd whose reads do not hold the process
 * ({@link Reactor.holdReads}: an unref'd connection) are watched by a wait
 * that does not hold it either, as long as nobody else is parked.
 *
 * @module
 */
import type { Adapter, EpollWaiter, Libc } from "../ffi/mod.ts";
import { check } from "./errors.ts";
import { readU32, writeU32 } from "./host_order.ts";

const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EPOLLERR = 0x8;
const EPOLLHUP = 0x10;
const EPOLLRDHUP = 0x2000;
const EPOLLET = 0x80000000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CLOEXEC = 0o2000000;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const MAX_EVENTS = 256;

/** Which way a parked caller waits. */
export type Direction = "read" | "write";

interface Parked {
  read: (() => void)[];
  write: (() => void)[];
  /** Whether the parked reads keep the process alive (writes always do). */
  readsHold: boolean;
}

/** See the module comment. One instance per process: {@link reactor}. */
export class Reactor {
  readonly #libc: Libc;
  readonly #epfd: number;
  readonly #wakeFd: number;
  readonly #waiter: EpollWaiter;
  readonly #eventSize: number;
  readonly #dataOffset: number;
  readonly #fds = new Map<number, Parked>();
  readonly #event: Uint8Array;
  #parked = 0;
  /** Parked callers that keep the process alive; the waiter holds it while this is above 0. */
  #holding = 0;
  /** What the waiter was last told (`hold`); nothing holds at first. */
  #held = false;
  #inFlight = false;

  constructor(adapter: Adapter) {
    this.#libc = adapter.libc;
    this.#eventSize = adapter.epollEventSize;
    // epoll_event is { u32 events; u64 data }, packed on x86-64 only.
    this.#dataOffset = this.#eventSize === 12 ? 4 : 8;
    this.#event = new Uint8Array(this.#eventSize);
    this.#epfd = check(this.#libc.epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
    this.#wakeFd = check(this.#libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd");
    this.#control(EPOLL_CTL_ADD, this.#wakeFd, EPOLLIN);
    this.#waiter = adapter.createEpollWaiter(this.#epfd, MAX_EVENTS);
    this.#waiter.hold(false);
  }

  #control(op: number, fd: number, events: number): number {
    writeU32(this.#event, 0, events);
    writeU32(this.#event, this.#dataOffset, fd);
    writeU32(this.#event, this.#dataOffset + 4, 0);
    return this.#libc.epoll_ctl(this.#epfd, op, fd, this.#event);
  }

  /** How many fds are registered now (for leak checks: a closed socket leaves none behind). */
  get registered(): number {
    return this.#fds.size;
  }

  /** How many callers are parked now. */
  get parked(): number {
    return this.#parked;
  }

  /** Watches `fd` (non-blocking) from now until {@link unregister}. */
  register(fd: number): void {
    if (this.#fds.has(fd)) return;
    check(this.#control(EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET), "epoll_ctl");
    this.#fds.set(fd, { read: [], write: [], readsHold: true });
  }

  /**
   * Whether reads parked on `fd` keep the process alive (`true` from
   * registration on); writes always do. A no-op for an fd that is not registered.
   */
  holdReads(fd: number, on: boolean): void {
    const parked = this.#fds.get(fd);
    if (!parked || parked.readsHold === on) return;
    parked.readsHold = on;
    this.#hold(on ? parked.read.length : -parked.read.length);
  }

  /** Counts parked callers that hold the process; tells the waiter when that count leaves or reaches 0. */
  #hold(delta: number): void {
    this.#holding += delta;
    const held = this.#holding > 0;
    if (held === this.#held) return;
    this.#held = held;
    this.#waiter.hold(held);
  }

  /** Stops watching `fd` and wakes everyone parked on it. Call before closing the fd. */
  unregister(fd: number): void {
    const parked = this.#fds.get(fd);
    if (!parked) return;
    this.#fds.delete(fd);
    this.#control(EPOLL_CTL_DEL, fd, 0);
    this.#wake(parked, EPOLLIN | EPOLLOUT);
    // Nobody left to wait for: let the in-flight wait return so the process may exit.
    if (this.#parked === 0 && this.#inFlight) this.#kick();
  }

  /**
   * Resolves on the next readiness edge of `fd` in `direction`, or when the fd
   * is unregistered. Resolves at once for an fd that is not registered.
   */
  wait(fd: number, direction: Direction): Promise<void> {
    const parked = this.#fds.get(fd);
    if (!parked) return Promise.resolve();
    return new Promise<void>((resolve) => {
      parked[direction].push(resolve);
      this.#parked++;
      if (direction === "write" || parked.readsHold) this.#hold(1);
      this.#pump();
    });
  }

  #kick(): void {
    const one = new Uint8Array(8);
    one[0] = 1;
    this.#libc.write(this.#wakeFd, one);
  }

  #pump(): void {
    if (this.#inFlight || this.#parked === 0) return;
    this.#inFlight = true;
    this.#waiter.wait().then((count) => {
      this.#inFlight = false;
      this.#dispatch(count);
      this.#pump();
    });
  }

  #dispatch(count: number): void {
    for (let i = 0; i < count; i++) {
      const at = i * this.#eventSize;
      const events = readU32(this.#waiter.events, at);
      const fd = readU32(this.#waiter.events, at + this.#dataOffset);
      if (fd === this.#wakeFd) {
        const drain = new Uint8Array(8);
        while (this.#libc.read(this.#wakeFd, drain) > 0) { /* until EAGAIN */ }
        continue;
      }
      const parked = this.#fds.get(fd);
      if (parked) this.#wake(parked, events & (EPOLLERR | EPOLLHUP) ? EPOLLIN | EPOLLOUT : events);
    }
  }

  #wake(parked: Parked, events: number): void {
    if (events & (EPOLLIN | EPOLLRDHUP) && parked.read.length > 0) {
      if (parked.readsHold) this.#hold(-parked.read.length);
      this.#release(parked.read.splice(0));
    }
    if (events & EPOLLOUT && parked.write.length > 0) {
      this.#hold(-parked.write.length);
      this.#release(parked.write.splice(0));
    }
  }

  #release(resolvers: (() => void)[]): void {
    this.#parked -= resolvers.length;
    for (const resolve of resolvers) resolve();
  }
}

let instance: Reactor | undefined;

/** The process's reactor, made on first use. */
export function reactor(adapter: Adapter): Reactor {
  instance ??= new Reactor(adapter);
  return instance;
}

/**
 * The reactor's registrations and parked callers, for tests and soak runs;
 * zeros before the reactor exists. Not part of the public API.
 */
export function reactorStats(): { registered: number; parked: number } {
  return { registered: instance?.registered ?? 0, parked: instance?.parked ?? 0 };
}

/** Stops watching `fd` if the process's reactor exists and watches it (see {@link Reactor.unregister}). */
export function unwatch(fd: number): void {
  instance?.unregister(fd);
}
