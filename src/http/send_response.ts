/**
 * Sends a handler's Web `Response` on a `node:http` `ServerResponse` in as
 * few writes as it can. srvx's `sendNodeResponse` writes the head, each body
 * chunk and the chunked terminator one by one, and each write that reaches
 * the connection is a send syscall (on Deno also an FFI hand-off): Bun's
 * `node:http` sends the head alone, and a body over the stream's high-water
 * mark waits for a drain, so its terminator goes alone too.
 *
 * A body that is already whole in memory — one built from bytes, a string, a
 * Blob, FormData, or a stream that finishes at once — is gathered and sent
 * with a `Content-Length`, head and body in one write. Whether a body is
 * whole is seen, not guessed: it is read until the event loop turns; a body
 * still being produced then streams on through srvx, its first chunks first.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { setImmediate } from "node:timers";
import { sendNodeResponse } from "srvx/node";

/** Bodies gathered up to this size; a larger one streams (no second copy of a big body). */
const GATHER_LIMIT = 1024 * 1024;

/** A reader of a `Response` body, and what its `read()` gives (named apart from the lib's, which differ by runtime). */
type BodyReader = ReadableStreamDefaultReader<Uint8Array<ArrayBuffer>>;
type ReadResult = Awaited<ReturnType<BodyReader["read"]>>;

/** Replays what was read ahead, then the rest of the body, as one stream. */
function replay(read: Uint8Array[], reader: BodyReader, pending: Promise<ReadResult>): ReadableStream<Uint8Array> {
  let next: Promise<ReadResult> | undefined = pending;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of read) controller.enqueue(chunk);
    },
    async pull(controller) {
      const result = await (next ?? reader.read());
      next = undefined;
      if (result.done) controller.close();
      else controller.enqueue(result.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

function joined(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/**
 * Sends `response` as the answer to `req` on `res`. Resolves when the
 * response has been handed to the connection (or its body stream settled).
 */
export async function sendResponse(req: IncomingMessage, res: ServerResponse, response: Response): Promise<void> {
  // Writes wait until the response is all written, or the loop turns, so they leave together.
  const socket = req.socket;
  socket.cork();
  let corked = true;
  const release = (): void => {
    if (corked) socket.uncork();
    corked = false;
  };
  const turned = new Promise<undefined>((resolve) =>
    setImmediate(() => {
      release();
      resolve(undefined);
    })
  );
  const body = response.body;
  const framed = response.headers.has("content-length") || response.headers.has("transfer-encoding");
  if (body === null || framed || req.method === "HEAD") return sendNodeResponse(res, response);

  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const next = reader.read();
    const result = await Promise.race([next, turned]);
    if (result === undefined || (!result.done && !(result.value instanceof Uint8Array)) || size > GATHER_LIMIT) {
      // Still being produced (or not bytes, or big): stream it, starting with what was read.
      const rest = result === undefined ? next : Promise.resolve(result);
      const { status, statusText, headers } = response;
      return sendNodeResponse(res, new Response(replay(chunks, reader, rest), { status, statusText, headers }));
    }
    if (result.done) break;
    chunks.push(result.value);
    size += result.value.byteLength;
  }
  const headers: string[] = [];
  for (const [name, value] of response.headers) headers.push(name, value);
  headers.push("content-length", String(size));
  res.writeHead(response.status, response.statusText, headers);
  const sent = new Promise<void>((resolve) => res.end(joined(chunks, size), () => resolve()));
  release();
  await sent;
}
