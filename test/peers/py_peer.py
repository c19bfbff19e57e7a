#!/usr/bin/env python3
"""Independent vsock peer for the interop tests: python3's own socket.AF_VSOCK.

  py_peer.py echo-server          bind CID_ANY/PORT_ANY, print "ready PORT", echo every connection
  py_peer.py client CID PORT N    send N pattern bytes, half-close, read to EOF, print "BYTES SHA256"
  py_peer.py pingpong CID PORT ROUNDS SIZE   print microseconds per round trip (benchmark baseline)
  py_peer.py stream CID PORT BYTES CHUNK     send BYTES, half-close, await the sink's count; print MiB/s
"""
import hashlib
import socket
import sys
import threading
import time


def pattern(n: int) -> bytes:
    # Same bytes as test/e2e/data.ts: block k is sha256(k as u32 little-endian).
    blocks = (hashlib.sha256(k.to_bytes(4, "little")).digest() for k in range((n + 31) // 32))
    return b"".join(blocks)[:n]


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


def recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        data = s.recv(n - len(out))
        if not data:
            raise EOFError("unexpected EOF")
        out += data
    return out


def pingpong(cid: int, port: int, rounds: int, size: int) -> None:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    msg = bytes(size)
    t0 = time.perf_counter()
    for _ in range(rounds):
        s.sendall(msg)
        recv_exact(s, size)
    print(f"{(time.perf_counter() - t0) * 1e6 / rounds:.2f}", flush=True)


def stream(cid: int, port: int, total: int, chunk: int) -> None:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    buf = bytes(chunk)
    t0 = time.perf_counter()
    for _ in range(0, total, chunk):
        s.sendall(buf)
    s.shutdown(socket.SHUT_WR)
    got = int.from_bytes(recv_exact(s, 8), "little")
    if got != total:
        sys.exit(f"sink counted {got} of {total}")
    print(f"{total / 1048576 / (time.perf_counter() - t0):.1f}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "echo-server":
        echo_server()
    elif sys.argv[1] == "client":
        client(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "pingpong":
        pingpong(*map(int, sys.argv[2:6]))
    elif sys.argv[1] == "stream":
        stream(*map(int, sys.argv[2:6]))
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
