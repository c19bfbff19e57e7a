import { test } from "node:test";
import assert from "node:assert/strict";
import { adapter } from "../../ffi/mod.ts";
import {
  bindDatagram,
  connect,
  fromFd,
  listen,
  RECONNECT_CODES,
  shouldReconnect,
  VsockAddr,
  VsockError,
} from "../../mod.ts";
import { readFileSync } from "node:fs";
import { openFds, RUNTIME } from "../helpers.ts";
import { Peer, runOn } from "../e2e/procs.ts";

const KiB = 1024;

test("vsock buffer options: kernel defaults, clamping into [min, max], limits applied first", () => {
  using listener = listen();
  assert.equal(listener.bufferSize, 256 * KiB);
  assert.equal(listener.bufferMinSize, 128);
  assert.equal(listener.bufferMaxSize, 256 * KiB);
  listener.bufferSize = 1 << 30; // above max: clamped
  assert.equal(listener.bufferSize, 256 * KiB);
  listener.bufferSize = 100; // below min: clamped
  assert.equal(listener.bufferSize, 128);
  listener.bufferSize = 64 * KiB;
  assert.equal(listener.bufferSize, 64 * KiB);
  // Given together at creation, the max moves before the size is set.
  using big = listen({ bufferMaxSize: 4 << 20, bufferSize: 4 << 20 });
  assert.equal(big.bufferMaxSize, 4 << 20);
  assert.equal(big.bufferSize, 4 << 20);
});

test("connectTimeout round-trips in ms, and 0 restores the 2 s default", () => {
  using listener = listen();
  assert.equal(listener.connectTimeout, 2000);
  listener.connectTimeout = 3500;
  assert.equal(listener.connectTimeout, 3500);
  listener.connectTimeout = 0;
  assert.equal(listener.connectTimeout, 2000);
  // The kernel keeps it in jiffies: pick a value every HZ represents exactly.
  using other = listen({ connectTimeout: 1000 });
  assert.equal(other.connectTimeout, 1000);
});

test("generic options are stored by the kernel for vsock sockets", () => {
  using listener = listen({ keepAlive: true, receiveBufferSize: 64 * KiB });
  assert.equal(listener.keepAlive, true);
  listener.keepAlive = false;
  assert.equal(listener.keepAlive, false);
  // Linux doubles SO_RCVBUF/SO_SNDBUF for bookkeeping.
  assert.equal(listener.receiveBufferSize, 128 * KiB);
  listener.sendBufferSize = 32 * KiB;
  assert.equal(listener.sendBufferSize, 64 * KiB);
});

test("bad option values fail before a socket is made; options on a closed socket fail clearly", async () => {
  const before = openFds();
  assert.throws(() => listen({ bufferSize: -1 }), RangeError);
  assert.throws(() => listen({ bufferSize: 1.5 }), TypeError);
  assert.throws(() => listen({ keepAlive: "yes" as unknown as boolean }), TypeError);
  await assert.rejects(connect({ cid: 1, port: 1, connectTimeout: -5 }), RangeError);
  assert.throws(() => listen({ type: "dgram" as unknown as "stream" }), TypeError);
  assert.equal(openFds(), before);
  const listener = listen();
  listener.close();
  assert.throws(() => listener.bufferSize, { code: "EBADF" });
  assert.throws(() => (listener.keepAlive = true), { code: "EBADF" });
});

test("a seqpacket listener is a SOCK_SEQPACKET socket", () => {
  using listener = listen({ type: "seqpacket" });
  assert.equal(listener.type, "seqpacket");
  const type = new Uint8Array(4);
  assert.equal(adapter.libc.getsockopt(listener.fd, 1, 3, type, new Uint32Array([4])), 0);
  assert.equal(type[0], 5);
});

test("datagram sockets fail at once with an error naming the transport limit", () => {
  const before = openFds();
  assert.throws(() => bindDatagram(), (error) => {
    assert.ok(error instanceof VsockError);
    assert.ok(["ENODEV", "EOPNOTSUPP", "ESOCKTNOSUPPORT"].includes(error.code), error.code);
    assert.match(error.message, /only by the VMCI transport \(VMware\)/);
    assert.match(error.message, /virtio/);
    return true;
  });
  assert.equal(openFds(), before);
});

test("listen({ fd }) adopts a bound vsock socket and owns its fd", () => {
  const libc = adapter.libc;
  const fd = libc.socket(40, 1, 0); // blocking, not close-on-exec, as inherited fds are
  assert.ok(fd >= 0);
  assert.equal(libc.bind(fd, new VsockAddr(0xffffffff, 0xffffffff).toBytes()), 0);
  const listener = listen({ fd, bufferSize: 64 * KiB });
  assert.equal(listener.fd, fd);
  assert.notEqual(listener.addr.port, 0xffffffff);
  assert.equal(listener.bufferSize, 64 * KiB);
  // Made non-blocking and close-on-exec like the library's own sockets.
  const fdinfo = new TextDecoder().decode(readFileSync(`/proc/self/fdinfo/${fd}`));
  const flags = parseInt(fdinfo.match(/flags:\s+(\d+)/)![1], 8);
  assert.ok(flags & 0o4000, "O_NONBLOCK");
  assert.ok(flags & 0o2000000, "O_CLOEXEC");
  listener.close();
  assert.equal(libc.close(fd), -9, "the listener closed the fd it adopted");
});

test("adopting the wrong kind of fd says what it is", async () => {
  const libc = adapter.libc;
  const tcp = libc.socket(2, 1, 0);
  const seq = libc.socket(40, 5, 0);
  const dev = libc.open(new TextEncoder().encode("/dev/null\0"), 0);
  const idle = libc.socket(40, 1, 0);
  try {
    assert.throws(() => listen({ fd: tcp }), { code: "EAFNOSUPPORT", message: /AF_INET socket, not AF_VSOCK/ });
    assert.throws(() => listen({ fd: seq }), { code: "EPROTOTYPE", message: /SOCK_SEQPACKET.*pass type: "seqpacket"/ });
    assert.throws(() => listen({ fd: dev }), { code: "ENOTSOCK", message: /not a socket/ });
    await assert.rejects(fromFd(idle), { code: "ENOTCONN", message: /not connected/ });
    await assert.rejects(fromFd(tcp), { code: "EAFNOSUPPORT" });
    const listening = listen();
    await assert.rejects(fromFd(listening.fd), { code: "EINVAL", message: /use listen\(\{ fd/ });
    listening.close();
  } finally {
    for (const fd of [tcp, seq, dev, idle]) libc.close(fd);
  }
});

test("systemd socket activation: listenFds() adopts LISTEN_FDS and clears the variables", async () => {
  for (const kind of ["stream", "seqpacket"]) {
    const [command, args] = runOn(RUNTIME, "examples/activated_echo.ts");
    const service = new Peer("python3", ["test/peers/py_peer.py", "activate", kind, command, ...args]);
    try {
      const [, port] = await service.match(/ready (\d+)/);
      const [line] = await service.match(/activated .*/);
      assert.equal(line, `activated vsock-test (fd 3): vsock://*:${port} ${kind}; LISTEN_FDS now undefined`);
    } finally {
      service.kill();
    }
  }
});

test("shouldReconnect picks out the codes that mean the connection is gone", () => {
  assert.ok(RECONNECT_CODES.has("ECONNRESET"));
  assert.ok(shouldReconnect(new VsockError({ errno: 104, syscall: "recv" })));
  assert.ok(shouldReconnect(new VsockError({ errno: 32, syscall: "send" })));
  assert.ok(!shouldReconnect(new VsockError({ errno: 98, syscall: "bind" })));
  assert.ok(!shouldReconnect(new VsockError({ errno: 9, syscall: "read" })), "EBADF is our own misuse, not the peer");
  assert.ok(!shouldReconnect(new Error("ECONNRESET")));
});
