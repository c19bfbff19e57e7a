#!/usr/bin/env python3
"""Independent vsock peer for the interop tests: python3's own socket.AF_VSOCK.

  py_peer.py echo-server          bind CID_ANY/PORT_ANY, print "ready PORT", echo every connection
  py_peer.py client CID PORT N    send N pattern bytes, half-close, read to EOF, print "BYTES SHA256"
"""
import hashlib
import socket
import sys
import threading


def pattern(n: int) -> bytes:
    # Same bytes as test/e2e/data.ts: byte i = (i * 31 + (i >> 8)) & 0xff.
    return bytes(((i * 31) + (i >> 8)) & 0xFF for i in range(n))


def echo(conn: socket.socket) -> None:
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)


def echo_server() -> None:
    srv = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    srv.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
    srv.listen(128)
    print("ready", srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def client(cid: int, port: int, n: int) -> None:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    payload = pattern(n)

    def send() -> None:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    digest = hashlib.sha256()
    total = 0
    while True:
        data = s.recv(65536)
        if not data:
            break
        digest.update(data)
        total += len(data)
    sender.join()
    s.close()
    print(total, digest.hexdigest(), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "echo-server":
        echo_server()
    elif sys.argv[1] == "client":
        client(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
