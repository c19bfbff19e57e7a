/**
 * The README's "More of vsock(7)" snippets, runnable as one script on Bun and
 * Deno over CID 1 (the test suite runs it):
 *
 *   bun examples/surface.ts
 *   deno run --allow-ffi --allow-env examples/surface.ts
 */
import { bindDatagram, connect, listen, localCid, shouldReconnect, type VsockError } from "../mod.ts";

// Messages: SOCK_SEQPACKET keeps boundaries — one send is one receive.
const server = listen({ type: "seqpacket" });
const client = await connect({ cid: 1, port: server.addr.port, type: "seqpacket" });
const peer = await server.accept();
await client.send(new TextEncoder().encode("first"));
await client.send(new TextEncoder().encode("second"));
console.log(new TextDecoder().decode((await peer.receive())!)); // "first"
console.log(new TextDecoder().decode((await peer.receive())!)); // "second"

// Options: typed at creation, getters/setters afterwards.
peer.bufferSize = 64 * 1024; // the flow-control window (clamped into [bufferMinSize, bufferMaxSize])
console.log(peer.bufferSize, client.connectTimeout); // 65536 2000
console.log(`fd ${peer.fd} belongs to the connection; close() closes it`);

// Datagrams exist only on VMware's VMCI transport; elsewhere the error says so.
try {
  bindDatagram();
} catch (error) {
  console.log((error as VsockError).code); // "ENODEV" on virtio and loopback
}

// Reconnect-worthy errors, e.g. after a live migration or a server restart.
try {
  await connect({ cid: 1, port: server.addr.port + 1 }); // nothing listens there
} catch (error) {
  console.log(shouldReconnect(error), `local CID now ${localCid()}`); // true
}
client.close();
peer.close();
server.close();
