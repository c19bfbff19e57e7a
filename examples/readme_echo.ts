import { connect, listen, VMADDR_CID_LOCAL } from "../mod.ts";

// An echo server on a port the kernel picks, on every CID.
const listener = listen();
(async () => {
  for await (const conn of listener) conn.readable.pipeTo(conn.writable);
})();

// CID 1 is this machine (the vsock_loopback transport); from a guest, the host is VMADDR_CID_HOST.
const conn = await connect({ cid: VMADDR_CID_LOCAL, port: listener.addr.port });
await conn.writeAll(new TextEncoder().encode("hello vsock"));
await conn.closeWrite();
console.log(await new Response(conn.readable).text()); // "hello vsock"
conn.close();
listener.close();
