/**
 * The one libc symbol table both adapters bind. Types are written in a
 * runtime-neutral vocabulary; each adapter maps them to its own FFI names.
 *
 * Only calls the library really makes are listed: a unit test checks that both
 * runtimes bind every one of them.
 *
 * @module
 */

/** A C type as the adapters understand it. */
export type CType = "i32" | "u32" | "u64" | "usize" | "isize" | "ptr";

/** One libc function: its argument types and its return type. */
export interface SymbolSpec {
  readonly args: readonly CType[];
  readonly returns: CType;
}

/** The name of a libc function the library calls. */
export type SymbolName =
  | "socket"
  | "bind"
  | "connect"
  | "listen"
  | "accept4"
  | "getsockname"
  | "getpeername"
  | "getsockopt"
  | "setsockopt"
  | "shutdown"
  | "close"
  | "recv"
  | "send"
  | "sendto"
  | "recvfrom"
  | "read"
  | "write"
  | "ioctl"
  | "open"
  | "epoll_create1"
  | "epoll_ctl"
  | "epoll_wait"
  | "eventfd"
  | "__errno_location";

/** Every libc function the library calls, by name. */
export const SYMBOLS: Readonly<Record<SymbolName, SymbolSpec>> = {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  listen: { args: ["i32", "i32"], returns: "i32" },
  accept4: { args: ["i32", "ptr", "ptr", "i32"], returns: "i32" },
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  getpeername: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  shutdown: { args: ["i32", "i32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  recv: { args: ["i32", "ptr", "usize", "i32"], returns: "isize" },
  send: { args: ["i32", "ptr", "usize", "i32"], returns: "isize" },
  sendto: { args: ["i32", "ptr", "usize", "i32", "ptr", "u32"], returns: "isize" },
  recvfrom: { args: ["i32", "ptr", "usize", "i32", "ptr", "ptr"], returns: "isize" },
  // read/write only drain and kick the reactor's eventfd; sockets use recv/send.
  read: { args: ["i32", "ptr", "usize"], returns: "isize" },
  write: { args: ["i32", "ptr", "usize"], returns: "isize" },
  // ioctl and open are variadic in C; on the Linux ABIs we support an
  // integer/pointer argument is passed the same way either way.
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  open: { args: ["ptr", "i32"], returns: "i32" },
  epoll_create1: { args: ["i32"], returns: "i32" },
  epoll_ctl: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
  epoll_wait: { args: ["i32", "ptr", "i32", "i32"], returns: "i32" },
  eventfd: { args: ["u32", "i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
};

/** The C library both adapters open. */
export const LIBC_PATH = "libc.so.6";
