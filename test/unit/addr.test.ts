import { test } from "node:test";
import assert from "node:assert/strict";
import {
  VMADDR_CID_ANY,
  VMADDR_CID_HOST,
  VMADDR_CID_HYPERVISOR,
  VMADDR_CID_LOCAL,
  VMADDR_FLAG_TO_HOST,
  VMADDR_PORT_ANY,
  VsockAddr,
} from "../../mod.ts";

test("constants have the vsock(7) values", () => {
  assert.equal(VMADDR_CID_ANY, 0xffffffff);
  assert.equal(VMADDR_PORT_ANY, 0xffffffff);
  assert.equal(VMADDR_CID_HYPERVISOR, 0);
  assert.equal(VMADDR_CID_LOCAL, 1);
  assert.equal(VMADDR_CID_HOST, 2);
  assert.equal(VMADDR_FLAG_TO_HOST, 1);
});

test("toBytes packs the 16-byte sockaddr_vm in host byte order", () => {
  const bytes = new VsockAddr(0x01020304, 0x0a0b0c0d, true).toBytes();
  assert.deepEqual(
    [...bytes],
    [40, 0, 0, 0, 0x0d, 0x0c, 0x0b, 0x0a, 0x04, 0x03, 0x02, 0x01, 1, 0, 0, 0],
  );
  assert.deepEqual([...new VsockAddr(VMADDR_CID_ANY, 5000).toBytes()], [
    40,
    0,
    0,
    0,
    0x88,
    0x13,
    0,
    0,
    0xff,
    0xff,
    0xff,
    0xff,
    0,
    0,
    0,
    0,
  ]);
});

test("fromBytes reverses toBytes, including the TO_HOST flag", () => {
  for (const addr of [new VsockAddr(1, 5000), new VsockAddr(2, 0xffffffff, true), new VsockAddr(0xffffffff, 0)]) {
    const back = VsockAddr.fromBytes(addr.toBytes());
    assert.ok(back.equals(addr), `${back} != ${addr}`);
    assert.equal(back.toHost, addr.toHost);
  }
});

test("fromBytes reads a sockaddr_vm at an offset inside a larger buffer", () => {
  const big = new Uint8Array(40);
  big.set(new VsockAddr(7, 8).toBytes(), 10);
  assert.ok(VsockAddr.fromBytes(big.subarray(10, 26)).equals(new VsockAddr(7, 8)));
});

test("fromBytes rejects a wrong length or family", () => {
  assert.throws(() => VsockAddr.fromBytes(new Uint8Array(15)), RangeError);
  assert.throws(() => VsockAddr.fromBytes(new Uint8Array(17)), RangeError);
  const inet = new VsockAddr(1, 2).toBytes();
  inet[0] = 2; // AF_INET
  assert.throws(() => VsockAddr.fromBytes(inet), /family 2/);
});

test("parse accepts every documented spelling", () => {
  const cases: [string, number, number, boolean][] = [
    ["vsock://1:5000", 1, 5000, false],
    ["1:5000", 1, 5000, false],
    ["vsock://*:*", VMADDR_CID_ANY, VMADDR_PORT_ANY, false],
    ["any:80", VMADDR_CID_ANY, 80, false],
    ["local:1", 1, 1, false],
    ["host:1024", 2, 1024, false],
    ["hypervisor:9", 0, 9, false],
    ["VSOCK://HOST:7", 2, 7, false],
    ["vsock://2:1234?to_host", 2, 1234, true],
    ["4294967295:4294967295", 0xffffffff, 0xffffffff, false],
  ];
  for (const [text, cid, port, toHost] of cases) {
    const addr = VsockAddr.parse(text);
    assert.deepEqual([addr.cid, addr.port, addr.toHost], [cid, port, toHost], text);
    assert.equal(addr.transport, "vsock");
  }
});

test("toString is canonical and parse reads it back", () => {
  assert.equal(new VsockAddr(3, 5000).toString(), "vsock://3:5000");
  assert.equal(new VsockAddr(VMADDR_CID_ANY, VMADDR_PORT_ANY).toString(), "vsock://*:*");
  assert.equal(new VsockAddr(2, 1, true).toString(), "vsock://2:1?to_host");
  for (const addr of [new VsockAddr(3, 5000), new VsockAddr(VMADDR_CID_ANY, 0), new VsockAddr(2, 1, true)]) {
    assert.ok(VsockAddr.parse(addr.toString()).equals(addr));
  }
});

test("bad input throws TypeError or RangeError naming the bad part", () => {
  assert.throws(() => new VsockAddr(1.5, 1), { name: "TypeError", message: /CID/ });
  assert.throws(() => new VsockAddr(1, Number.NaN), { name: "TypeError", message: /port/ });
  assert.throws(() => new VsockAddr(-1, 1), { name: "RangeError", message: /CID/ });
  assert.throws(() => new VsockAddr(1, 2 ** 32), { name: "RangeError", message: /port/ });
  assert.throws(() => new VsockAddr("1" as unknown as number, 1), TypeError);
  assert.throws(() => VsockAddr.parse("garbage"), { name: "TypeError", message: /garbage/ });
  assert.throws(() => VsockAddr.parse("vsock://x:1"), { name: "TypeError", message: /CID "x"/ });
  assert.throws(() => VsockAddr.parse("1:port"), { name: "TypeError", message: /port "port"/ });
  assert.throws(() => VsockAddr.parse("1:-5"), { name: "TypeError", message: /port "-5"/ });
  assert.throws(() => VsockAddr.parse("4294967296:1"), { name: "RangeError", message: /CID 4294967296/ });
  assert.throws(() => VsockAddr.parse("1:99999999999"), { name: "RangeError", message: /port/ });
  assert.throws(() => VsockAddr.parse("1:2?bogus"), { name: "TypeError", message: /bogus/ });
  assert.throws(() => VsockAddr.parse(""), TypeError);
});

test("equals compares CID, port and flag", () => {
  assert.ok(new VsockAddr(1, 2).equals(new VsockAddr(1, 2)));
  assert.ok(!new VsockAddr(1, 2).equals(new VsockAddr(1, 3)));
  assert.ok(!new VsockAddr(1, 2).equals(new VsockAddr(2, 2)));
  assert.ok(!new VsockAddr(1, 2).equals(new VsockAddr(1, 2, true)));
});

test("a VsockAddr has the fields of Deno.VsockAddr", () => {
  const addr: { transport: "vsock"; cid: number; port: number } = new VsockAddr(3, 4);
  assert.deepEqual({ transport: addr.transport, cid: addr.cid, port: addr.port }, {
    transport: "vsock",
    cid: 3,
    port: 4,
  });
});
