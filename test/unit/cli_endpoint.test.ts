/** The command line tool's endpoint parser and version. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { formatEndpoint, parseEndpoint } from "../../cli/endpoint.ts";
import { UsageError } from "../../cli/usage_error.ts";
import { VERSION } from "../../cli/version.ts";
import { ROOT } from "../e2e/procs.ts";

test("cli endpoints: every form, with vsock CID names as VsockAddr.parse reads them", () => {
  assert.deepEqual(parseEndpoint("vsock:3:80"), { kind: "vsock", cid: 3, port: 80 });
  assert.deepEqual(parseEndpoint("vsock:local:5000"), { kind: "vsock", cid: 1, port: 5000 });
  assert.deepEqual(parseEndpoint("vsock:host:5000"), { kind: "vsock", cid: 2, port: 5000 });
  assert.deepEqual(parseEndpoint("vsock:any:5000"), { kind: "vsock", cid: 0xffffffff, port: 5000 });
  assert.deepEqual(parseEndpoint("vsock:5000"), { kind: "vsock", cid: 0xffffffff, port: 5000 });
  assert.deepEqual(parseEndpoint("vsock:1:4294967294"), { kind: "vsock", cid: 1, port: 4294967294 });
  assert.deepEqual(parseEndpoint("tcp:127.0.0.1:8080"), { kind: "tcp", host: "127.0.0.1", port: 8080 });
  assert.deepEqual(parseEndpoint("tcp:localhost:0"), { kind: "tcp", host: "localhost", port: 0 });
  assert.deepEqual(parseEndpoint("tcp:[::1]:22"), { kind: "tcp", host: "::1", port: 22 });
  assert.deepEqual(parseEndpoint("tcp:8080"), { kind: "tcp", host: "127.0.0.1", port: 8080 });
  assert.deepEqual(parseEndpoint("unix:/run/x.sock"), { kind: "unix", path: "/run/x.sock" });
  assert.deepEqual(parseEndpoint("unix:rel:with:colons"), { kind: "unix", path: "rel:with:colons" });
  assert.deepEqual(parseEndpoint("unix:///run/vm1/v.sock?port=52"), {
    kind: "hybrid",
    path: "/run/vm1/v.sock",
    port: 52,
  });
  assert.deepEqual(parseEndpoint("UNIX:///a%20b/v.sock?port=4294967295"), {
    kind: "hybrid",
    path: "/a b/v.sock",
    port: 4294967295,
  });
  for (
    const text of [
      "vsock:3:80",
      "vsock:any:5000",
      "tcp:127.0.0.1:8080",
      "tcp:[::1]:22",
      "unix:/run/x.sock",
      "unix:///run/vm1/v.sock?port=52",
    ]
  ) {
    assert.equal(formatEndpoint(parseEndpoint(text)), text);
  }
});

test("cli endpoints: bad text is a UsageError naming the endpoint and the bad part", () => {
  const bad: [string, RegExp][] = [
    ["", /expected vsock:CID:PORT, vsock:PORT, tcp:HOST:PORT, tcp:PORT, unix:PATH or unix:\/\/\/PATH\?port=N/],
    ["3:80", /bad endpoint "3:80": expected vsock:CID:PORT/],
    ["http://x", /bad endpoint "http:\/\/x"/],
    ["vsock:", /expected vsock:CID:PORT or vsock:PORT/],
    ["vsock:1:2:3", /expected vsock:CID:PORT or vsock:PORT/],
    ["vsock://1:2", /not a URL/],
    ["vsock:abc:80", /invalid vsock CID "abc"/],
    ["vsock:1:x", /invalid vsock port "x"/],
    ["vsock:1:4294967296", /port 4294967296 is larger than 4294967295/],
    ["tcp:", /TCP port must be a number from 0 to 65535, got ""/],
    ["tcp:host:70000", /TCP port must be a number from 0 to 65535, got "70000"/],
    ["tcp::80", /expected tcp:HOST:PORT/],
    ["tcp:::1:80", /IPv6 as tcp:\[ADDR\]:PORT/],
    ["unix:", /expected unix:PATH/],
    ["unix:///run/v.sock", /bad endpoint "unix:\/\/\/run\/v.sock": .*has no \?port=N/],
    ["unix://v.sock?port=1", /needs an absolute path after unix:\/\//],
    ["unix:///v.sock?port=1&port=2", /gives the port more than once/],
    ["unix:///v.sock?port=x", /invalid hybrid vsock port "x"/],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parseEndpoint(text), (e: unknown) => e instanceof UsageError && message.test(e.message), text);
  }
});

test("cli version is package.json's and deno.json's", () => {
  for (const file of ["package.json", "deno.json"]) {
    const text = new TextDecoder().decode(readFileSync(`${ROOT}${file}`));
    assert.equal(JSON.parse(text).version, VERSION, file);
  }
});
