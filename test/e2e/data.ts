/** Deterministic test payloads and their hashes, shared with the python3 peer's `pattern()`. */
import { createHash } from "node:crypto";

/**
 * `n` bytes of SHA-256 counter stream: block k is sha256(k as 4 little-endian
 * bytes). Never periodic, so a lost, repeated or swapped chunk changes the hash.
 */
export function pattern(n: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(n / 32) * 32);
  const counter = new Uint8Array(4);
  for (let k = 0; k * 32 < n; k++) {
    new DataView(counter.buffer).setUint32(0, k, true);
    out.set(createHash("sha256").update(counter).digest(), k * 32);
  }
  return out.subarray(0, n);
}

/** Hex SHA-256 of `data`. */
export function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Joins chunks into one array. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** A stream of `data` in `size`-byte chunks. */
export function streamOf(data: Uint8Array, size = 50_000): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= data.byteLength) return controller.close();
      controller.enqueue(data.subarray(at, at + size));
      at += size;
    },
  });
}

/** Everything a stream yields, joined. */
export async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return concat(chunks);
}
