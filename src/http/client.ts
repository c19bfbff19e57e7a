/**
 * The HTTP client over vsock: `createHttpClient()` (a keep-alive pool to one
 * address) and `fetch()` for `vsock://CID:PORT/path` URLs. Requests are sent
 * by each runtime's own `node:http` client on connections of this library
 * (an `http.Agent` whose `createConnection` dials with `connect()`), and
 * converted to and from Web `Request`/`Response` here — the only part that
 * is not a library's, because no well-kept library converts a `node:http`
 * client response (the server side uses srvx).
 *
 * @module
 */
import { Agent, type IncomingMessage, request as httpRequest } from "node:http";
import { type Duplex, Readable } from "node:stream";
import { VsockAddr } from "../addr.ts";
import type { StreamConnectTarget } from "../connect.ts";
import { isHybridString } from "../hybrid/addr.ts";
import { parseHybridConnect } from "../hybrid/connect.ts";
import { VsockError } from "../errors.ts";
import { dial } from "./dial.ts";
import { noRuntimeResend } from "./node_http_quirks.ts";
import { EBADF, ETIMEDOUT } from "../errno.ts";

/**
 * Dials one connection for the pool, as the stream `node:http`'s client
 * writes to: a `net.Socket`, or any connection with `VsockConn`'s shape
 * wrapped in a `ConnDuplex`.
 */
export type Dialer = () => Promise<Duplex>;

/** Options for {@link createHttpClient}: where to connect, and how the pool behaves. */
export interface HttpClientOptions {
  /** Most connections open at once; further requests wait for one. Default 64. */
  maxSockets?: number;
  /** Milliseconds an idle pooled connection is kept; default 4000 (below the usual 5 s server keep-alive). */
  idleTimeout?: number;
  /** Keep connections for reuse (default `true`); `false` closes each after its response. */
  keepAlive?: boolean;
}

/** `RequestInit` plus a time limit. */
export interface VsockRequestInit extends RequestInit {
  /**
   * Milliseconds until the response's status and headers must have arrived
   * (connecting included); then the request is aborted and the call rejects
   * with a `VsockError` `ETIMEDOUT`. The body is not timed: use `signal`.
   */
  timeout?: number;
}

/**
 * What relative URLs resolve against and what `Host` says unless the URL
 * names a host: `localhost`, as `curl --unix-socket` and Docker's API clients
 * do. A CID cannot stand in the URL: URL parsing reads a number as an IPv4
 * address (CID 3 becomes 0.0.0.3).
 */
const ORIGIN = "http://localhost";

/** Statuses whose responses never have a body (Fetch's "null body status"). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** Methods a client may send again after a failure (RFC 9110, 9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/**
 * A request that failed on a reused keep-alive connection before any byte of
 * a response arrived: the server most likely closed that idle connection as
 * the request went out (the keep-alive race). Only `fetch` sees this; it
 * sends an idempotent request with a replayable body once more on a fresh
 * connection, and otherwise rejects with `cause`.
 */
class StaleConnection {
  readonly cause: unknown;
  constructor(cause: unknown) {
    this.cause = cause;
  }
}

/** The pool's agent: every socket it asks for is a fresh connection from `dial`. */
class DialingAgent extends Agent {
  readonly #dial: Dialer;

  constructor(dial: Dialer, keepAlive: boolean, idleTimeout: number) {
    super({ keepAlive, timeout: idleTimeout, scheduling: "lifo" });
    this.#dial = dial;
  }

  // Handing the socket back asynchronously through the callback is what
  // node:http expects of a custom createConnection on Node, Bun and Deno alike.
  override createConnection(
    _options: unknown,
    callback?: (error: Error | null, socket: Duplex) => void,
  ): undefined {
    this.#dial().then(
      (socket) => callback?.(null, socket),
      (error: Error) => callback?.(error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/** A counting gate: at most `limit` holders at once, the rest wait in order. */
class Gate {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(limit: number) {
    this.#free = limit;
  }
  async enter(signal: AbortSignal | undefined): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = (): void => {
        this.#waiting.splice(this.#waiting.indexOf(go), 1);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(go);
    });
  }
  leave(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new RangeError(`createHttpClient() ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** A `Response` for a `node:http` response; its body streams from the connection. */
function toResponse(res: IncomingMessage, method: string): Response {
  const headers = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
  const status = res.statusCode ?? 200;
  const hasBody = method !== "HEAD" && !NULL_BODY.has(status);
  const body = hasBody ? Readable.toWeb(res) as unknown as ReadableStream<Uint8Array> : null;
  return new Response(body, { status, statusText: res.statusMessage ?? "", headers });
}

/**
 * An HTTP/1.1 client for one vsock address (or any address `connect()`
 * takes) with a keep-alive connection pool. From {@link createHttpClient}.
 */
export class VsockHttpClient implements Disposable {
  /** What relative URLs resolve against, and the `Host` they send: `http://localhost`. */
  readonly origin: string;
  readonly #agent: DialingAgent;
  readonly #gate: Gate;
  /** Connections that have carried a request: a request on one of these is on a reused connection. */
  readonly #used = new WeakSet<object>();
  #closed = false;

  /** @internal Made by {@link createHttpClient}. */
  constructor(dial: Dialer, origin: string, options: HttpClientOptions) {
    this.origin = origin;
    const keepAlive = options.keepAlive ?? true;
    if (typeof keepAlive !== "boolean") throw new TypeError("createHttpClient() keepAlive must be a boolean");
    this.#agent = new DialingAgent(dial, keepAlive, positiveInt(options.idleTimeout, "idleTimeout", 4000));
    this.#gate = new Gate(positiveInt(options.maxSockets, "maxSockets", 64));
  }

  /**
   * Sends a request, with Web `fetch` semantics: resolves with the `Response`
   * once its head arrived (the body streams). Rejects with `connect()`'s
   * `VsockError` when no connection can be made (`ECONNRESET`: nothing
   * listens), with the error of the connection or of `node:http` when one
   * breaks (each has a `code`, e.g. `ECONNRESET` for a response cut short),
   * and on abort with the signal's reason — also while the body is being
   * read. The URL's host and port only fill the `Host` header: every request
   * goes to this client's address.
   * A URL that is only a path resolves against {@link origin}.
   *
   * @example
   * ```ts
   * const client = createHttpClient({ cid: 3, port: 8080 });
   * const res = await client.fetch("/v1/exec", { method: "POST", body: JSON.stringify({ cmd: "uptime" }) });
   * console.log(await res.json());
   * client.close();
   * ```
   */
  async fetch(input: string | URL | Request, init: VsockRequestInit = {}): Promise<Response> {
    if (this.#closed) {
      throw new VsockError({ errno: EBADF, syscall: "fetch", message: "this HTTP client is closed (EBADF)" });
    }
    const { timeout, ...rest } = init;
    if (timeout !== undefined && !(typeof timeout === "number" && timeout >= 0 && Number.isFinite(timeout))) {
      throw new RangeError(`fetch() timeout must be a non-negative number of milliseconds, got ${String(timeout)}`);
    }
    const url = typeof input === "string" && input.startsWith("/") ? this.origin + input : input;
    // Only a stream body is sent as it comes (chunked); a body of known size
    // is sent with Content-Length, which servers such as python's http.server need.
    const streamed = rest.body instanceof ReadableStream || (rest.body === undefined && input instanceof Request);
    const request = new Request(url, streamed && rest.body ? { ...rest, duplex: "half" } as RequestInit : rest);
    const target = new URL(request.url);
    if (target.protocol !== "http:") {
      throw new TypeError(`fetch() over vsock speaks plain http, got ${target.protocol} in ${target.href}`);
    }
    const signal = rest.signal ?? undefined;
    signal?.throwIfAborted();
    const deadline = timeout === undefined ? undefined : Date.now() + timeout;
    await this.#gate.enter(signal);
    let released = false;
    const release = (): void => {
      if (!released) this.#gate.leave();
      released = true;
    };
    try {
      const body = request.body && !streamed ? new Uint8Array(await request.arrayBuffer()) : request.body;
      try {
        return await this.#send(request, body, target, signal, timeout, release);
      } catch (error) {
        if (!(error instanceof StaleConnection)) throw error;
        // Only a request that can be sent again exactly as it was: idempotent, body in memory.
        if (!IDEMPOTENT.has(request.method) || body instanceof ReadableStream) throw error.cause;
        // The failed attempt left the gate (its cleanup ran): enter again for the second one.
        await this.#gate.enter(signal);
        released = false;
        const left = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
        return await this.#send(request, body, target, signal, timeout, release, left).catch((e: unknown) => {
          throw e instanceof StaleConnection ? e.cause : e;
        });
      }
    } catch (error) {
      release();
      throw error;
    }
  }

  #send(
    request: Request,
    body: Uint8Array | ReadableStream<Uint8Array> | null,
    target: URL,
    signal: AbortSignal | undefined,
    timeout: number | undefined,
    release: () => void,
    /** Milliseconds left of `timeout` (a second attempt gets what the first left over). */
    left: number | undefined = timeout,
  ): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of request.headers) headers[name] = value;
      if (body instanceof Uint8Array) headers["content-length"] = String(body.byteLength);
      const req = httpRequest({
        agent: this.#agent,
        method: request.method,
        host: target.hostname,
        port: target.port || 80,
        path: target.pathname + target.search,
        headers,
        setHost: true,
      });
      let settled = false;
      let res: IncomingMessage | undefined;
      let reused = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      req.on("socket", (socket) => {
        reused = this.#used.has(socket);
        this.#used.add(socket);
        noRuntimeResend(req);
      });
      const fail = (reason: unknown): void => {
        clearTimeout(timer);
        const error = reason instanceof Error ? reason : new Error(String(reason));
        // Mid-body: the response's stream errors with the same reason.
        res?.destroy(error);
        req.destroy(error);
        if (!settled) {
          settled = true;
          reject(reason);
        }
      };
      const onAbort = (): void => fail(signal?.reason);
      const cleanup = (): void => {
        signal?.removeEventListener("abort", onAbort);
        release();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      if (left !== undefined) {
        timer = setTimeout(() =>
          fail(
            new VsockError({
              errno: ETIMEDOUT,
              syscall: "fetch",
              code: "ETIMEDOUT",
              message: `${request.method} ${target.href} got no response within ${timeout} ms (ETIMEDOUT)`,
            }),
          ), left);
      }
      req.on("error", (error) => {
        cleanup();
        if (reused && res === undefined && !settled) {
          // Not our abort or timeout (those settle first): a reused connection failed before any response.
          clearTimeout(timer);
          settled = true;
          reject(new StaleConnection(error));
          return;
        }
        fail(error);
      });
      req.on("response", (response: IncomingMessage) => {
        clearTimeout(timer);
        res = response;
        response.once("close", cleanup);
        if (settled) return;
        settled = true;
        const result = toResponse(response, request.method);
        if (result.body) return resolve(result);
        // No body: settle once the response has ended, so its connection is
        // back in the pool before the caller's next request.
        response.once("end", () => resolve(result));
        response.resume();
      });
      if (body instanceof ReadableStream) {
        // Written chunk by chunk, waiting for "drain": not `Readable.fromWeb(body).pipe(req)`,
        // after which Node's client never saw the response on a reused keep-alive connection.
        (async () => {
          const reader = body.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            if (req.destroyed) return void reader.cancel().catch(() => {}); // aborted or failed: stop the source
            if (!req.write(value)) {
              await new Promise<void>((resolve) => {
                const go = (): void => {
                  req.off("drain", go).off("close", go);
                  resolve();
                };
                req.on("drain", go).on("close", go);
              });
            }
          }
          req.end();
        })().catch(fail);
      } else {
        req.end(body ?? undefined);
      }
    });
  }

  /** Closes every pooled connection; requests in flight are aborted. Further `fetch` calls reject. */
  close(): void {
    this.#closed = true;
    this.#agent.destroy();
  }

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Where {@link createHttpClient} connects: anything `connect()` takes for a
 * byte stream — `AF_VSOCK` options, hybrid vsock options (`{ uds, port }`
 * through a Firecracker / Cloud Hypervisor vsock Unix socket) or an address
 * string of either kind.
 */
export type HttpTarget = StreamConnectTarget;

/**
 * A keep-alive HTTP client for one address. Takes everything `connect()`
 * takes (`{ cid, port, timeout, bufferSize, ... }`, `"vsock://3:8080"`, or
 * hybrid vsock's `{ uds, port }` / `"unix:///run/vm1/v.sock?port=8080"`),
 * plus the pool options. Connections open on demand, up to `maxSockets`,
 * and idle ones do not keep the process alive.
 *
 * @example
 * ```ts
 * import { createHttpClient } from "@vsock/vsock/http";
 *
 * using client = createHttpClient({ cid: 3, port: 8080 });
 * const health = await client.fetch("http://agent/health");
 * using guest = createHttpClient({ uds: "/run/vm1/v.sock", port: 8080 }); // Firecracker host
 * ```
 */
export function createHttpClient(target: HttpTarget, options: HttpClientOptions = {}): VsockHttpClient {
  if (typeof target !== "string" && (target === null || typeof target !== "object")) {
    throw new TypeError("createHttpClient() takes connect() options or an address string");
  }
  if (options === null || typeof options !== "object") {
    throw new TypeError("createHttpClient() options must be an object");
  }
  // Bad addresses fail here, not at the first request.
  if (typeof target === "string") {
    if (isHybridString(target)) parseHybridConnect(target);
    else VsockAddr.parse(target);
  } else if ((target as { type?: unknown }).type !== undefined && (target as { type?: unknown }).type !== "stream") {
    throw new TypeError('createHttpClient() speaks HTTP over stream connections: leave type out or say "stream"');
  }
  return new VsockHttpClient(() => dial(target), ORIGIN, options);
}

/** One pooled client per vsock address, for {@link fetch}. */
const shared = new Map<string, VsockHttpClient>();

/**
 * Web `fetch` over vsock: `fetch("vsock://3:8080/health")`. The URL's host is
 * the CID (a number, or `local`, `host`, `hypervisor`), its port the vsock
 * port. Connections are pooled per address and reused. A `Request` whose URL
 * is `vsock://…` works too. `init.timeout` limits the wait for the response
 * head (`ETIMEDOUT`); `init.signal` aborts at any stage.
 *
 * @example
 * ```ts
 * import { fetch } from "@vsock/vsock/http";
 * const res = await fetch("vsock://3:8080/health", { timeout: 2000 });
 * console.log(res.status, await res.text());
 * ```
 */
export function fetch(input: string | URL | Request, init?: VsockRequestInit): Promise<Response> {
  let href: string;
  try {
    href = input instanceof Request ? input.url : String(input);
  } catch (error) {
    return Promise.reject(error);
  }
  if (!href.startsWith("vsock://")) {
    return Promise.reject(new TypeError(`fetch() from vsock takes vsock://CID:PORT/path URLs, got ${href}`));
  }
  // Not `new URL()`: vsock ports are 32-bit (the kernel hands out ports far
  // above 65535), which URL parsing rejects.
  const rest = href.slice("vsock://".length);
  const slash = rest.search(/[/?#]/);
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "/" : (rest[slash] === "/" ? "" : "/") + rest.slice(slash).replace(/#.*$/, "");
  if (!/:\d+$/.test(authority)) {
    return Promise.reject(new TypeError(`the URL has no port: ${href} (vsock://CID:PORT/path)`));
  }
  let address: VsockAddr;
  try {
    address = VsockAddr.parse(`vsock://${authority}`);
  } catch (error) {
    return Promise.reject(error);
  }
  const key = `${address.cid}:${address.port}`;
  let client = shared.get(key);
  if (!client) shared.set(key, client = createHttpClient({ cid: address.cid, port: address.port }));
  const httpUrl = ORIGIN + path;
  return client.fetch(input instanceof Request ? new Request(httpUrl, input) : httpUrl, init);
}
