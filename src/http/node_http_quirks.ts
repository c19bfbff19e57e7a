/**
 * Where the runtimes' `node:http` servers differ when they are handed
 * connections instead of listening themselves. Each fix is correct on every
 * runtime, so none of them asks which runtime it is on; the unit tests
 * (test/unit/http.test.ts: keep-alive, reason phrase) fail if one is lost.
 *
 * @module
 */
import { type Server, STATUS_CODES } from "node:http";

/**
 * Our server does listen — on vsock, which `node:http` cannot see. Deno's
 * `node:http` (2.9) answers with `Connection: keep-alive` but then ends the
 * connection after one request unless `server.listening` is true; Node's own
 * also refuses keep-alive on a server that is not listening.
 */
export function markListening(server: Server): void {
  Object.defineProperty(server, "listening", { get: () => true, configurable: true });
}

/**
 * The reason phrase to write. srvx passes the `Response`'s `statusText`,
 * which is `""` unless the handler set one; Node and Bun then write the
 * standard phrase, Deno writes none (`HTTP/1.1 200 `). So fill it in.
 */
export function reasonPhrase(status: number, given: unknown): string {
  return typeof given === "string" && given !== "" ? given : STATUS_CODES[status] ?? "";
}
