/**
 * Where the runtimes' `node:http` servers differ when they are handed
 * connections instead of listening themselves, and where their clients
 * differ on a reused keep-alive connection. Each fix is correct on every
 * runtime, so none of them asks which runtime it is on; the unit tests
 * (test/unit/http.test.ts: keep-alive, reason phrase) fail if one is lost.
 *
 * @module
 */
import { type ClientRequest, type Server, STATUS_CODES } from "node:http";

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

/**
 * Keeps a client request from being sent a second time by the runtime. Deno's
 * `node:http` client (2.9) resends any request whose reused keep-alive
 * connection failed before a response, whatever its method, so a POST could
 * reach the server twice; Node's and Bun's never resend. The client decides
 * itself (idempotent methods with a body in memory, once), so this clears the
 * `reusedSocket` flag that Deno's resend depends on; call it from the
 * request's `socket` event. Node documents the flag as informational only.
 */
export function noRuntimeResend(req: ClientRequest): void {
  (req as { reusedSocket: boolean }).reusedSocket = false;
}
