/**
 * A socket-activated echo service (systemd `ListenStream=vsock::5000`, or
 * `ListenSequentialPacket=` for messages): it takes its listeners from
 * `LISTEN_FDS` instead of binding. Runs as written on Bun and on Deno:
 *
 *   bun examples/activated_echo.ts
 *   deno run --allow-ffi --allow-env examples/activated_echo.ts
 *
 * With Accept=yes systemd passes one connected socket instead; the service
 * then serves that one with `fromFd(3)` (`--accepted`).
 */
import process from "node:process";
import { fromFd, listenFds, type VsockConn, type VsockListener, type VsockSeqpacketConn } from "../mod.ts";

async function echo(conn: VsockConn | VsockSeqpacketConn): Promise<void> {
  if ("send" in conn) {
    for await (const message of conn) await conn.send(message);
  } else {
    await conn.readable.pipeTo(conn.writable);
  }
  conn.close();
}

if (process.argv.includes("--accepted")) {
  const conn = await fromFd(3);
  console.log(`accepted fd 3: ${conn.localAddr} <- ${conn.remoteAddr}`);
  await echo(conn);
} else {
  const activated = listenFds();
  if (activated.length === 0) {
    throw new Error("no vsock sockets passed (LISTEN_FDS): start me from a systemd .socket unit");
  }
  for (const { name, fd, listener } of activated) {
    console.log(
      `activated ${name} (fd ${fd}): ${listener.addr} ${listener.type}; LISTEN_FDS now ${process.env.LISTEN_FDS}`,
    );
    (async () => {
      for await (const conn of listener as VsockListener<VsockConn | VsockSeqpacketConn>) {
        echo(conn).catch(() => conn.close());
      }
    })();
  }
}
