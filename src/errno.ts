/**
 * The Linux errno numbers the library's code tests for or reports, by name,
 * in one place. (`errors.ts` holds what each means to a vsock user.)
 *
 * @module
 */

/** Interrupted by a signal: retry. */
export const EINTR = 4;
/** Bad file descriptor. */
export const EBADF = 9;
/** Would block (also `EWOULDBLOCK`). */
export const EAGAIN = 11;
/** Out of memory. */
export const ENOMEM = 12;
/** No such device: no vsock transport. */
export const ENODEV = 19;
/** Invalid argument. */
export const EINVAL = 22;
/** Too many open files in the system. */
export const ENFILE = 23;
/** Too many open files in this process. */
export const EMFILE = 24;
/** Broken pipe. */
export const EPIPE = 32;
/** Protocol error. */
export const EPROTO = 71;
/** Not a socket. */
export const ENOTSOCK = 88;
/** Message too long. */
export const EMSGSIZE = 90;
/** Protocol wrong type for socket. */
export const EPROTOTYPE = 91;
/** Socket type not supported. */
export const ESOCKTNOSUPPORT = 94;
/** Operation not supported. */
export const EOPNOTSUPP = 95;
/** Address family not supported. */
export const EAFNOSUPPORT = 97;
/** Address already in use. */
export const EADDRINUSE = 98;
/** Connection aborted. */
export const ECONNABORTED = 103;
/** Connection reset by peer. */
export const ECONNRESET = 104;
/** No buffer space available. */
export const ENOBUFS = 105;
/** Already connected. */
export const EISCONN = 106;
/** Not connected. */
export const ENOTCONN = 107;
/** Timed out. */
export const ETIMEDOUT = 110;
/** Connection refused. */
export const ECONNREFUSED = 111;
/** Operation already in progress. */
export const EALREADY = 114;
/** Operation now in progress. */
export const EINPROGRESS = 115;
