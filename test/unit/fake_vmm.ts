/**
 * An in-process fake of a VMM's hybrid vsock Unix socket (node:net), for the
 * handshake's unit tests: it answers `CONNECT <port>\n` like Firecracker's
 * muxer and then echoes, or misbehaves in the ways a VMM does.
 */
import { createServer, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** How the fake answers a request. */
export interface FakeVmmOptions {
  /** The reply line; default `"OK 1073741824\n"`. */
  reply?: string;
  /** Sent right after the reply; `coalesce` puts both in one write. */
  greeting?: Uint8Array;
  /** Reply and greeting in one write (as when the guest's first bytes arrive with the OK). */
  coalesce?: boolean;
  /** Close without a byte after reading the request (nothing listens on the guest port). */
  silentClose?: boolean;
  /** Read the request and never answer. */
  neverAnswer?: boolean;
  /** Silently close the first N connections, then behave (a guest agent still booting). */
  failFirst?: number;
  /** Firecracker's quirk: a request that does not arrive whole in the first read is dropped. */
  splitSensitive?: boolean;
}

/** A running fake VMM. */
export class FakeVmm {
  readonly dir: string;
  /** The VMM's vsock socket path. */
  readonly path: string;
  /** Every request line received (without `\n`), in order. */
  readonly requests: string[] = [];
  /** Connections accepted so far. */
  connections = 0;
  /** Set when a client sent bytes after its request before the reply went out. */
  earlyBytes = false;
  /** Set when a client's half-close reached the fake. */
  sawEnd = false;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #options: FakeVmmOptions;

  private constructor(options: FakeVmmOptions) {
    this.#options = options;
    this.dir = mkdtempSync(join(tmpdir(), "hybrid-"));
    this.path = join(this.dir, "v.sock");
    this.#server = createServer({ allowHalfOpen: true }, (socket) => this.#handle(socket));
  }

  /** Starts listening. */
  static async start(options: FakeVmmOptions = {}): Promise<FakeVmm> {
    const fake = new FakeVmm(options);
    await new Promise<void>((resolve, reject) => {
      fake.#server.once("error", reject);
      fake.#server.listen(fake.path, () => resolve());
    });
    return fake;
  }

  #handle(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on("close", () => this.#sockets.delete(socket));
    socket.on("error", () => {});
    let echoing = false;
    // Until it echoes, the fake hangs up when the client does (allowHalfOpen would keep the fd open).
    socket.once("end", () => {
      if (!echoing) return void socket.destroy();
      this.sawEnd = true;
      socket.end();
    });
    const n = ++this.connections;
    const o = this.#options;
    let pending = new Uint8Array(0);
    let first = true;
    let answered = false;
    const onData = (chunk: Uint8Array): void => {
      if (answered) return;
      const joined = new Uint8Array(pending.byteLength + chunk.byteLength);
      joined.set(pending);
      joined.set(chunk, pending.byteLength);
      pending = joined;
      const end = pending.indexOf(0x0a);
      if (end < 0) {
        if ((o.splitSensitive && first) || pending.byteLength >= 32) socket.destroy();
        first = false;
        return;
      }
      first = false;
      answered = true;
      socket.off("data", onData);
      const line = new TextDecoder().decode(pending.subarray(0, end));
      this.requests.push(line);
      if (pending.byteLength > end + 1) this.earlyBytes = true;
      const [verb, port] = line.split(/\s+/);
      if (verb.toLowerCase() !== "connect" || !/^\d+$/.test(port ?? "")) return void socket.destroy();
      if (o.silentClose || n <= (o.failFirst ?? 0)) return void socket.destroy();
      if (o.neverAnswer) return;
      const reply = new TextEncoder().encode(o.reply ?? "OK 1073741824\n");
      const greeting = o.greeting ?? new Uint8Array(0);
      if (o.coalesce) {
        const both = new Uint8Array(reply.byteLength + greeting.byteLength);
        both.set(reply);
        both.set(greeting, reply.byteLength);
        socket.write(both);
      } else {
        socket.write(reply);
        if (greeting.byteLength > 0) socket.write(greeting);
      }
      // Echo from here on; a half-close is answered with one.
      echoing = true;
      socket.on("data", (data: Uint8Array) => socket.write(data));
    };
    socket.on("data", onData);
  }

  /** Stops, drops every connection, removes the directory. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
