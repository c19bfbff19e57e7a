/**
 * `serve()`: HTTP/1.1 over vsock with a fetch-style handler, shaped like
 * `Deno.serve`. Parsing is each runtime's own `node:http` (llhttp), which is
 * handed every accepted connection (on Bun the socket itself, elsewhere a
 * `ConnDuplex` over it: served.ts); converting its
 * request and response to and from Web `Request`/`Response` is srvx's Node
 * adapter (`NodeRequest`, `sendNodeResponse` — see send_response.ts). Only the vsock parts are here:
 * accepting, the CID allow-list, and a graceful shutdown that knows which
 * connections are idle.
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { clearTimeout, setTimeout } from "node:timers";
import { NodeRequest } from "srvx/node";
import { VsockAddr } from "../addr.ts";
import type { HybridAddr } from "../hybrid/addr.ts";
import { listen, type ListenOptions } from "../listener.ts";
import type { ByteConn } from "../conn_duplex.ts";
import { markListening, reasonPhrase } from "./node_http_quirks.ts";
import { sendResponse } from "./send_response.ts";
import { acceptServed, type Served } from "./served.ts";

/** An address a served connection can have: `AF_VSOCK`, or hybrid vsock through a VMM's Unix socket. */
export type ServeAddr = VsockAddr | HybridAddr;

/** What a handler learns about the request besides the `Request` itself. */
export interface ServeHandlerInfo<A extends ServeAddr = VsockAddr> {
  /** The peer: for vsock its CID says which VM (or the host) is calling, and the kernel vouches for it. */
  remoteAddr: A;
  /** This end of the connection. */
  localAddr: A;
  /** Settles when the response has been sent completely, or the client went away. */
  completed: Promise<void>;
}

/** A fetch-style handler: Hono's `app.fetch`, Elysia's `app.fetch`, itty, or a plain function. */
export type ServeHandler<A extends ServeAddr = VsockAddr> = (
  request: Request,
  info: ServeHandlerInfo<A>,
) => Response | Promise<Response>;

/**
 * A source of connections to serve: a `VsockListener`, or a hybrid vsock
 * `listen({ uds, port })` (what guests dial to the host through a VMM).
 */
export interface ConnListener<A extends ServeAddr = VsockAddr> {
  /** The address it listens on. */
  readonly addr: A;
  /** The next connection. */
  accept(): Promise<ByteConn & { localAddr: A; remoteAddr: A }>;
  /** Stops listening; a pending `accept()` settles. */
  close(): void;
  /** `true` once closed. */
  readonly closed: boolean;
}

/** Options for {@link serve}. Socket options (`bufferSize`, ...) apply to the listener and so to each connection. */
export interface ServeOptions<A extends ServeAddr = VsockAddr> extends Omit<ListenOptions, "type"> {
  /** Aborting it shuts the server down gracefully, as {@link VsockHttpServer.shutdown} does. */
  signal?: AbortSignal;
  /** Called once listening, with the real address. Default: logs `Listening on vsock://CID:PORT/` to stderr. */
  onListen?: (addr: A) => void;
  /** Turns a handler's exception into the response to send. Default: logs it and answers 500. */
  onError?: (error: unknown) => Response | Promise<Response>;
  /**
   * Only these peer CIDs are served; other connections are closed before a
   * byte is read. vsock CIDs are assigned by the hypervisor and cannot be
   * forged by a guest, so this is real access control. For `AF_VSOCK`
   * listeners only: behind a hybrid listener every peer is the one VM whose
   * Unix socket it is.
   */
  allowCids?: readonly number[];
  /** Serve connections from this listener instead of making one (it is closed on shutdown). */
  listener?: ConnListener<A>;
  /** Milliseconds an idle keep-alive connection is kept open; default 5000 (as Node's `keepAliveTimeout`). */
  keepAliveTimeout?: number;
  /** Largest accepted request head in bytes; default 16 KiB. Larger heads get `431`. */
  maxHeaderSize?: number;
}

/** Options with the handler inside, as `Deno.serve({ handler })` takes them. */
export interface ServeInit<A extends ServeAddr = VsockAddr> extends ServeOptions<A> {
  /** The request handler. */
  handler: ServeHandler<A>;
}

/** One accepted connection's state: how many of its requests are still being answered. */
interface Tracked<A extends ServeAddr> {
  active: number;
  readonly served: Served<A>;
  /** The keep-alive timer, armed while no request is being answered. */
  idle?: ReturnType<typeof setTimeout>;
}

function validate<A extends ServeAddr>(options: ServeOptions<A>, handler: unknown): void {
  if (typeof handler !== "function") throw new TypeError("serve() needs a handler function");
  if (options.allowCids !== undefined) {
    if (options.listener && !(options.listener.addr instanceof VsockAddr)) {
      throw new TypeError(
        "serve() allowCids applies to AF_VSOCK listeners: behind a hybrid listener every peer is the one VM of that socket",
      );
    }
    if (!Array.isArray(options.allowCids) || !options.allowCids.every((c) => Number.isInteger(c) && c >= 0)) {
      throw new TypeError("serve() allowCids must be an array of CID numbers");
    }
  }
  for (const name of ["onListen", "onError"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      throw new TypeError(`serve() ${name} must be a function`);
    }
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new TypeError("serve() signal must be an AbortSignal");
  }
  for (const name of ["keepAliveTimeout", "maxHeaderSize"] as const) {
    const v = options[name];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0)) {
      throw new RangeError(`serve() ${name} must be a non-negative integer, got ${String(v)}`);
    }
  }
}

function defaultOnError(error: unknown): Response {
  console.error("vsock http: the handler failed:", error);
  return new Response("Internal Server Error", { status: 500, headers: { "content-type": "text/plain" } });
}

/** The status line and headers for a request `node:http` could not parse. */
function clientErrorResponse(code: string | undefined): string {
  const status = code === "HPE_HEADER_OVERFLOW" ? 431 : code === "HPE_URI_TOO_LONG" ? 414 : 400;
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
}

/**
 * Sends what is queued, half-closes, then closes: a peer that never closes
 * its side cannot keep the connection (or a shutdown) waiting.
 */
function closeAfterFlush(socket: Duplex, last?: string): void {
  socket.once("finish", () => socket.destroy());
  socket.end(last);
}

/**
 * A running HTTP server over vsock, from {@link serve}. Stop it with
 * `shutdown()`, the `signal` option, or `await using`.
 */
export class VsockHttpServer<A extends ServeAddr = VsockAddr> implements AsyncDisposable {
  /** The address it listens on (the kernel's port when port 0 or none was asked for). */
  readonly addr: A;
  /** Resolves when the server has stopped: no listener, no open connection. */
  readonly finished: Promise<void>;
  readonly #listener: ConnListener<A>;
  readonly #conns = new Map<Duplex, Tracked<A>>();
  #stopping = false;
  #keepAliveMs: number;
  #accepting: Promise<void>;
  #resolveFinished!: () => void;

  /** @internal Made by {@link serve}. */
  constructor(listener: ConnListener<A>, handler: ServeHandler<A>, options: ServeOptions<A>) {
    this.#listener = listener;
    this.addr = listener.addr;
    this.finished = new Promise((resolve) => (this.#resolveFinished = resolve));
    const onError = options.onError ?? defaultOnError;

    const http = createServer({ maxHeaderSize: options.maxHeaderSize ?? 16 * 1024 }, (req, res) => {
      this.#respond(req, res, handler, onError);
    });
    // The keep-alive timeout is ours (see #idle): node:http's own timer, given
    // a handed-in connection, closed nothing on Node and Deno in our tests.
    http.keepAliveTimeout = 0;
    this.#keepAliveMs = options.keepAliveTimeout ?? 5000;
    markListening(http);
    http.on("clientError", (error: Error & { code?: string }, socket: Duplex) => {
      if (!socket.writable || error.code === "ECONNRESET") socket.destroy();
      else closeAfterFlush(socket, clientErrorResponse(error.code));
    });

    const next = acceptServed(listener, options.allowCids ? new Set(options.allowCids) : undefined);
    this.#accepting = (async () => {
      for (;;) {
        let served;
        try {
          served = await next();
        } catch (error) {
          if (listener.closed) return;
          // A failed accept (e.g. EMFILE) must not stop the server: report it and go on.
          console.error("vsock http: accept failed:", error);
          await new Promise((resolve) => setTimeout(resolve, 50));
          continue;
        }
        if (served === undefined) continue; // refused by allowCids, and closed
        const tracked: Tracked<A> = { active: 0, served };
        const { socket } = served;
        this.#conns.set(socket, tracked);
        this.#idle(tracked);
        socket.once("close", () => {
          clearTimeout(tracked.idle);
          this.#conns.delete(socket);
          this.#maybeFinished();
        });
        http.emit("connection", socket);
      }
    })();

    const signal = options.signal;
    if (signal?.aborted) queueMicrotask(() => this.shutdown());
    else signal?.addEventListener("abort", () => this.shutdown(), { once: true });
    this.finished.then(() => http.removeAllListeners());
  }

  #respond(
    req: IncomingMessage,
    res: ServerResponse,
    handler: ServeHandler<A>,
    onError: (error: unknown) => Response | Promise<Response>,
  ): void {
    const tracked = this.#conns.get(req.socket);
    if (!tracked) {
      res.destroy();
      return;
    }
    tracked.active++;
    clearTimeout(tracked.idle); // a request being answered is never cut by the keep-alive timeout
    this.#patchWriteHead(res);
    const completed = new Promise<void>((resolve) =>
      res.once("close", () => {
        tracked.active--;
        // Shutting down: a connection whose last response is out is now idle, so it goes.
        if (tracked.active === 0) {
          if (this.#stopping) closeAfterFlush(req.socket);
          else this.#idle(tracked);
        }
        resolve();
      })
    );
    const request = new NodeRequest({ req, res }) as unknown as Request;
    const info: ServeHandlerInfo<A> = {
      remoteAddr: tracked.served.remoteAddr,
      localAddr: tracked.served.localAddr,
      completed,
    };
    const answer = async (): Promise<Response> => {
      try {
        const response = await handler(request, info);
        if (!(response instanceof Response)) {
          throw new TypeError(`the handler returned ${response === null ? "null" : typeof response}, not a Response`);
        }
        return response;
      } catch (error) {
        try {
          return await onError(error);
        } catch (again) {
          console.error("vsock http: onError failed:", again);
          return new Response("Internal Server Error", { status: 500 });
        }
      }
    };
    answer().then((response) => sendResponse(req, res, response)).catch((error) => {
      console.error("vsock http: sending the response failed:", error);
      res.destroy();
    });
  }

  /**
   * Arms the keep-alive timeout of a connection with no request being
   * answered: after `keepAliveTimeout` ms without a byte from the client it
   * is closed. Bytes that arrived meanwhile (a request on its way to the
   * handler) push the deadline back instead, and so do bytes the connection
   * holds unread: in a busy process the timer can fire before the read that
   * takes the client's next request, and closing then would cut a request
   * the client already sent (measured: Deno, 200 keep-alive clients in one
   * process, "socket hang up" in CI).
   */
  #idle(tracked: Tracked<A>): void {
    const { served } = tracked;
    clearTimeout(tracked.idle);
    const ms = this.#keepAliveMs;
    if (ms <= 0) return;
    const check = (): void => {
      if (tracked.active > 0 || served.socket.destroyed) return;
      const left = served.lastReadAt() + ms - Date.now();
      if (left > 0) tracked.idle = setTimeout(check, left).unref();
      else if (served.hasInput()) tracked.idle = setTimeout(check, ms).unref();
      else served.socket.destroy();
    };
    served.lastReadAt(); // a native connection notes the bytes of the request just answered (see Served)
    tracked.idle = setTimeout(check, ms).unref();
  }

  /**
   * srvx writes the head with `writeHead(status, reason, rawHeaders)`; this
   * fills in the reason phrase (see node_http_quirks.ts) and, once shutdown
   * has begun, adds `Connection: close` — decided when the head goes out, so
   * a request that was in flight when shutdown began gets it too (a header:
   * Bun's and Deno's node:http ignore `shouldKeepAlive`).
   */
  #patchWriteHead(res: ServerResponse): void {
    const writeHead = res.writeHead as (...args: unknown[]) => ServerResponse;
    const stopping = (): boolean => this.#stopping;
    res.writeHead = function (this: ServerResponse, status: number, reason?: unknown, headers?: unknown) {
      if (stopping() && Array.isArray(headers)) headers.push("connection", "close");
      return writeHead.call(this, status, reasonPhrase(status, reason), headers);
    } as ServerResponse["writeHead"];
  }

  #maybeFinished(): void {
    if (this.#stopping && this.#conns.size === 0) this.#accepting.then(() => this.#resolveFinished());
  }

  /**
   * Stops accepting, lets requests in flight finish (their responses say
   * `Connection: close`), and closes idle keep-alive connections at once.
   * Resolves when everything is closed, like {@link finished}.
   */
  shutdown(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#listener.close();
      for (const [socket, tracked] of this.#conns) if (tracked.active === 0) socket.destroy();
      this.#maybeFinished();
    }
    return this.finished;
  }

  /** For `await using`: a graceful {@link shutdown}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

/**
 * Serves HTTP/1.1 over vsock with a fetch-style handler, like `Deno.serve`:
 * `serve(handler)`, `serve(options, handler)` or `serve({ ...options, handler })`.
 * Listens on every CID and a kernel-chosen port unless told otherwise.
 *
 * Requests carry an absolute URL (`http://<Host header, or CID:port>/path`),
 * a streaming body and a `signal` that aborts when the client goes away.
 * Responses stream chunk by chunk; keep-alive and pipelining work; a request
 * that cannot be parsed gets `400` (`431` for an oversized head) and a
 * handler that throws gets `500` — the server keeps running either way.
 *
 * @example
 * ```ts
 * import { serve } from "@vsock/vsock/http";
 *
 * const server = serve({ port: 8080 }, (req, info) =>
 *   Response.json({ path: new URL(req.url).pathname, from: info.remoteAddr.cid }));
 * // later
 * await server.shutdown();
 * ```
 */
export function serve(handler: ServeHandler): VsockHttpServer;
export function serve<A extends ServeAddr = VsockAddr>(
  options: ServeOptions<A>,
  handler: ServeHandler<A>,
): VsockHttpServer<A>;
export function serve<A extends ServeAddr = VsockAddr>(init: ServeInit<A>): VsockHttpServer<A>;
export function serve(a: unknown, b?: unknown): VsockHttpServer<ServeAddr> {
  let options: ServeOptions<ServeAddr>;
  let handler: unknown;
  if (typeof a === "function") [options, handler] = [{}, a];
  else if (a !== null && typeof a === "object") {
    options = a as ServeOptions<ServeAddr>;
    handler = b ?? (a as Partial<ServeInit<ServeAddr>>).handler;
  } else throw new TypeError("serve() takes a handler, or options and a handler");
  validate(options, handler);
  options.signal?.throwIfAborted();
  // Everything else in options is the listener's: cid, port, backlog, fd and socket options.
  const listener: ConnListener<ServeAddr> = options.listener ?? listen({ ...options, type: "stream" });
  const server = new VsockHttpServer(listener, handler as ServeHandler<ServeAddr>, options);
  (options.onListen ?? ((addr: ServeAddr) => console.error(`Listening on ${addr.toString()}/`)))(server.addr);
  return server;
}
