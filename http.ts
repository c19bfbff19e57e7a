/**
 * HTTP/1.1 over vsock, on every runtime the library supports: `serve()` with
 * a fetch-style handler (shaped like `Deno.serve`), and `fetch()` /
 * `createHttpClient()` with Web `Request`/`Response`. A separate entry point,
 * so programs that only need sockets never load an HTTP stack.
 *
 * @example
 * ```ts
 * import { fetch, serve } from "@vsock/vsock/http";
 *
 * const server = serve({ port: 8080, onListen: () => {} }, () => new Response("ok"));
 * const res = await fetch(`vsock://1:${server.addr.port}/`);
 * console.log(await res.text()); // "ok"
 * await server.shutdown();
 * ```
 *
 * @module
 */
export {
  createHttpClient,
  type Dialer,
  fetch,
  type HttpClientOptions,
  type HttpTarget,
  VsockHttpClient,
  type VsockRequestInit,
} from "./src/http/client.ts";
export type { ByteConn } from "./src/conn_duplex.ts";
export {
  type ConnListener,
  serve,
  type ServeAddr,
  type ServeHandler,
  type ServeHandlerInfo,
  type ServeInit,
  type ServeOptions,
  VsockHttpServer,
} from "./src/http/serve.ts";
