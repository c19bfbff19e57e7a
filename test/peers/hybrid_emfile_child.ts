/**
 * For test/unit/accept_loop.test.ts, run under a low `ulimit -n`: a hybrid
 * vsock listener (a Unix socket, no vsock needed) whose `for await` loop meets
 * EMFILE must keep serving once fds are free. Prints one line per step and
 * "ok"; any failure exits non-zero.
 */
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { listen, VsockError } from "../../mod.ts";

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

// Anything the runtime sets up lazily happens now, while fds are free (see fault_child.ts).
console.log("start");
const deno = (globalThis as { Deno?: { addSignalListener(s: string, f: () => void): void } }).Deno;
deno?.addSignalListener("SIGUSR2", () => {});
const dir = mkdtempSync(join(tmpdir(), "hybrid-emfile-"));
const listener = listen({ uds: join(dir, "v.sock"), port: 1234 });
/** A client of the listener's socket file that reads one byte. */
function dial(): Promise<{ socket: Socket; byte: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(
      listener.path,
      () => resolve({ socket, byte: new Promise((ok) => socket.once("data", (d: Uint8Array) => ok(d[0]))) }),
    );
    socket.once("error", reject);
  });
}
// On Bun the reactor's epoll waiter is a Worker (ffi/bun_waiter.ts) whose thread sets up its own event loop
// asynchronously, and Bun kills the process if that meets EMFILE. A served connection first proves it is up:
// this accept parks in the reactor, which only the running worker can wake.
const accepting = listener.accept();
const warm = await dial();
warm.socket.destroy();
(await accepting).close();
const queued = await dial(); // waits in the backlog
const filler: number[] = [];
for (;;) {
  try {
    filler.push(openSync("/dev/null", "r"));
  } catch (error) {
    if ((error as { code?: string }).code === "EMFILE") break;
    throw error;
  }
}
try {
  await listener.accept();
  fail("accept succeeded with no fd free");
} catch (error) {
  if (!(error instanceof VsockError && error.code === "EMFILE")) fail(`accept: ${String(error)}`);
}
console.log("accept EMFILE");
let served = 0;
const loop = (async () => {
  for await (const conn of listener) {
    await conn.writeAll(new Uint8Array([7]));
    // Close only after the client has: Bun's node:net reports a Unix connect whose peer
    // closed before the connect callback ran as ECONNRESET instead of data and EOF.
    await conn.read(new Uint8Array(1)).catch(() => null);
    conn.close();
    if (++served === 2) return;
  }
})();
await new Promise((resolve) => setTimeout(resolve, 300)); // the loop meets EMFILE meanwhile
for (const fd of filler.splice(0, 16)) closeSync(fd);
if (await queued.byte !== 7) fail("the queued connection was not served");
queued.socket.destroy();
const fresh = await dial();
if (await fresh.byte !== 7) fail("a new connection was not served");
fresh.socket.destroy();
await loop;
console.log("accept loop served 2 after fds freed");
listener.close();
for (const fd of filler) closeSync(fd);
rmSync(dir, { recursive: true, force: true });
console.log("ok");
