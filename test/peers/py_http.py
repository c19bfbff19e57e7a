#!/usr/bin/env python3
"""HTTP peers over AF_VSOCK from python3's standard library, nobody's code but CPython's.

  py_http.py client PORT     http.client on one AF_VSOCK connection to CID 1: three GETs
                             (keep-alive) and a 1 MiB POST to /echo; prints one JSON line
  py_http.py server          http.server (HTTP/1.1, keep-alive) on AF_VSOCK, any CID, a free
                             port; prints "ready PORT"; GET /hello, POST /echo, GET /stream
"""
import hashlib
import http.client
import http.server
import json
import socket
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from py_peer import pattern  # noqa: E402  the same bytes as test/e2e/data.ts


class VsockHTTPConnection(http.client.HTTPConnection):
    def __init__(self, cid, port):
        super().__init__("agent", port)
        self.vsock = (cid, port)

    def connect(self):
        self.sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        self.sock.connect(self.vsock)


def client(port):
    # Made before the first request, so the connection is never idle long
    # enough (5 s) for the server to close it between requests.
    data = pattern(1024 * 1024)
    conn = VsockHTTPConnection(1, port)
    out = {"gets": [], "sockets": set()}
    for path in ("/a", "/b?x=1", "/c"):
        conn.request("GET", path)
        res = conn.getresponse()
        out["gets"].append([res.status, res.reason, json.loads(res.read())])
        out["sockets"].add(id(conn.sock))
    conn.request("POST", "/echo", body=data, headers={"Content-Type": "application/octet-stream"})
    res = conn.getresponse()
    body = res.read()
    out["sockets"].add(id(conn.sock))
    out["echo"] = [res.status, len(body), hashlib.sha256(body).hexdigest(), hashlib.sha256(data).hexdigest()]
    out["sockets"] = len(out["sockets"])
    print(json.dumps(out), flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/stream":
            # Chunked by hand: http.server has no helper for it.
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(3):
                chunk = f"part{i};".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            return
        peer = self.client_address
        self._send(200, json.dumps({"path": self.path, "host": self.headers.get("Host"), "peer_cid": peer[0]}).encode())

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self._send(200, body, "application/octet-stream")


class VsockHTTPServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_VSOCK

    def server_bind(self):
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()


def server():
    srv = VsockHTTPServer((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY), Handler)
    print(f"ready {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "client":
        client(int(sys.argv[2]))
    elif sys.argv[1] == "server":
        server()
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
