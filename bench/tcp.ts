/**
 * "What users pick instead": the runtime's own TCP over loopback —
 * Deno.connect on Deno, Bun.connect on Bun, node:net on Node (the last two
 * wrapped into the Conn shape with pull/backpressure logic like the library's).
 *
 * `tcp.ts --vsock-fd MODE PORT ...` (Bun): Bun's own sockets on a vsock
 * socket instead, with nothing of the library above its FFI calls: `socket`
 * and one `connect` to CID 1, then `Bun.connect({ fd })`, whose first drain
 * says connected. The floor of ours on Bun (the `bun_fd` client): what Bun's
 * own socket code costs on vsock.
 */
/// <reference types="bun-types" />
import { connect as netConnect } from "node:net";
import process from "node:process";
import { main } from "./workloads.ts";
import type { Conn } from "./workloads.ts";

/** Node's own sockets: 'data' events queued for read(), paused past 64 KiB; write() waits for 'drain'. */
async function dialNode(port: number): Promise<Conn> {
  const socket = netConnect({ host: "127.0.0.1", port, allowHalfOpen: true, noDelay: true });
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const chunks: Uint8Array[] = [];
  let queued = 0;
  let eof = false;
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  socket.on("data", (d: Uint8Array) => {
    chunks.push(d);
    queued += d.length;
    if (queued > 65536) socket.pause();
    notify();
  });
  socket.on("end", () => ((eof = true), notify()));
  socket.on("close", () => ((eof = true), notify()));
  const park = () => new Promise<void>((resolve) => (wake = resolve));
  return {
    async read(p) {
      while (chunks.length === 0) {
        if (eof) return null;
        await park();
      }
      let n = 0;
      while (n < p.length && chunks.length > 0) {
        const head = chunks[0];
        const take = Math.min(head.length, p.length - n);
        p.set(head.subarray(0, take), n);
        n += take;
        if (take === head.length) chunks.shift();
        else chunks[0] = head.subarray(take);
      }
      queued -= n;
      if (queued <= 65536 && socket.isPaused()) socket.resume();
      return n;
    },
    async write(p) {
      // Node may keep `p` until it is flushed; the workloads never change a buffer they wrote.
      if (!socket.write(p)) await new Promise((resolve) => socket.once("drain", resolve));
      return p.length;
    },
    closeWrite: () => new Promise<void>((resolve) => socket.end(resolve)),
    close: () => socket.destroy(),
  };
}

const vsockFd = process.argv[2] === "--vsock-fd" && process.argv.splice(2, 1).length === 1;
// Loaded once, and only for --vsock-fd: the TCP clients must not load the FFI (Deno's runs without --allow-ffi).
const { libc, vsockSocket } = vsockFd ? await import("../src/socket.ts") : {};
const { VsockAddr } = vsockFd ? await import("../src/addr.ts") : {};

/** A vsock socket to CID 1 `port` whose connect is under way (or done), by the library's FFI calls alone. */
function vsockConnecting(port: number): number {
  if (!libc || !vsockSocket || !VsockAddr) throw new Error("vsockConnecting needs --vsock-fd");
  const address = new VsockAddr(1, port);
  const fd = vsockSocket("stream", address);
  const r = libc.connect(fd, address.toBytes());
  if (r !== 0 && r !== -115 /* EINPROGRESS */) {
    libc.close(fd);
    throw new Error(`connect to ${address} failed: errno ${-r}`);
  }
  return fd;
}

async function dialBun(port: number): Promise<Conn> {
  const chunks: Uint8Array[] = [];
  let eof = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const park = () => new Promise<void>((resolve) => (wake = resolve));
  const handlers = {
    binaryType: "uint8array" as const,
    data: (_s: unknown, d: Uint8Array) => (chunks.push(d), notify()),
    drain: notify,
    end: () => ((eof = true), notify()),
    close: () => ((eof = true), notify()),
  };
  let socket: Bun.Socket;
  if (vsockFd) {
    // bun-types declares no Bun.connect overload for { fd }; Bun takes it (ffi/bun_stream.ts).
    const adopt = Bun.connect as unknown as (o: { fd: number; allowHalfOpen: boolean; socket: typeof handlers }) => Promise<Bun.Socket>;
    const connected = park(); // the first drain (a close before it: eof)
    socket = await adopt({ fd: vsockConnecting(port), allowHalfOpen: true, socket: handlers });
    await connected;
    if (eof) throw new Error(`connect to 1:${port} failed`);
  } else {
    socket = await Bun.connect({ hostname: "127.0.0.1", port, allowHalfOpen: true, socket: handlers });
  }
  return {
    async read(p) {
      while (chunks.length === 0) {
        if (eof) return null;
        await park();
      }
      let n = 0;
      while (n < p.length && chunks.length > 0) {
        const head = chunks[0];
        const take = Math.min(head.length, p.length - n);
        p.set(head.subarray(0, take), n);
        n += take;
        if (take === head.length) chunks.shift();
        else chunks[0] = head.subarray(take);
      }
      return n;
    },
    async write(p) {
      for (;;) {
        const n = socket.write(p);
        if (n > 0) return n;
        await park();
      }
    },
    closeWrite: () => Promise.resolve(socket.shutdown()),
    close: () => socket.terminate(),
  };
}

await main(
  "Bun" in globalThis ? dialBun : "Deno" in globalThis ? (port) => Deno.connect({ hostname: "127.0.0.1", port }) : dialNode,
);
