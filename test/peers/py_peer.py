#!/usr/bin/env python3
"""Independent vsock peer for the interop tests: python3's own socket.AF_VSOCK.

  py_peer.py echo-server          bind CID_ANY/PORT_ANY, print "ready PORT", echo every connection
  py_peer.py client CID PORT N    send N pattern bytes, half-close, read to EOF, print "BYTES SHA256"
  py_peer.py seq-echo-server      like echo-server, SOCK_SEQPACKET: every message is echoed as one message
  py_peer.py seq-client CID PORT SIZES...  send one message per size, print "LEN SHA256" of each echo
  py_peer.py activate stream|seqpacket CMD...  act as systemd: listen on fd 3 (any port), print "ready PORT",
                                  exec CMD with LISTEN_FDS=1 LISTEN_PID=<pid> LISTEN_FDNAMES=vsock-test
  py_peer.py pass-connected CID PORT CMD...  connect, pass the connected socket as fd 3 (systemd Accept=yes), exec CMD
  py_peer.py fill CID PORT         connect and write without ever being read until the kernel stops
                                  taking data (non-blocking), print how many bytes it took
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
    # The soak's churn connects and closes at once, faster than a thread per
    # connection is started in the VM: a full queue resets new connects
    # (ECONNRESET), so the queue is as deep as the kernel allows.
    srv.listen(4096)  # capped by net.core.somaxconn (4096 since Linux 5.4)
    print("ready", srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


class ResetAfter(Exception):
    """The connection was reset (RST, not EOF) after `n` bytes had arrived."""

    def __init__(self, n: int) -> None:
        super().__init__(f"reset after {n} bytes")
        self.n = n


def hash_to_eof(s: socket.socket) -> tuple:
    """Reads `s` to EOF: (byte count, sha256 hex digest). A reset raises ResetAfter with the count so far."""
    digest, total = hashlib.sha256(), 0
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return total, digest.hexdigest()
            digest.update(data)
            total += len(data)
    except ConnectionResetError as error:
        raise ResetAfter(total) from error


def send_then_half_close(s: socket.socket, data: bytes) -> threading.Thread:
    """Sends `data` and half-closes from a thread, so the caller can read meanwhile (no window deadlock).
    A send error ends the thread quietly: the receiving side reports how the connection ended."""

    def send() -> None:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    sender = threading.Thread(target=send)
    sender.start()
    return sender


def client(cid: int, port: int, n: int) -> None:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    sender = send_then_half_close(s, pattern(n))
    total, digest = hash_to_eof(s)
    sender.join()
    s.close()
    print(total, digest, flush=True)


def seq_echo(conn: socket.socket) -> None:
    with conn:
        while True:
            data = conn.recv(1 << 20)
            if not data:
                break
            conn.send(data)


def seq_echo_server() -> None:
    srv = socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET)
    srv.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
    srv.listen(16)
    print("ready", srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=seq_echo, args=(conn,), daemon=True).start()


def seq_client(cid: int, port: int, sizes: list) -> None:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET)
    s.connect((cid, port))
    for size in sizes:
        s.send(pattern(size))
        data = s.recv(1 << 20)
        print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
    s.close()


def activate(kind: str, cmd: list) -> None:
    import os
    kinds = {"stream": socket.SOCK_STREAM, "seqpacket": socket.SOCK_SEQPACKET}
    srv = socket.socket(socket.AF_VSOCK, kinds[kind])
    srv.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
    srv.listen(16)
    print("ready", srv.getsockname()[1], flush=True)
    if srv.fileno() != 3:
        os.dup2(srv.fileno(), 3)
    os.set_inheritable(3, True)  # python sockets are close-on-exec; dup2 onto the same fd would not clear it
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="vsock-test")
    os.execvpe(cmd[0], cmd, env)


def pass_connected(cid: int, port: int, cmd: list) -> None:
    import os
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    if s.fileno() != 3:
        os.dup2(s.fileno(), 3)
    os.set_inheritable(3, True)
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
    os.execvpe(cmd[0], cmd, env)


def fill(cid: int, port: int) -> None:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    s.setblocking(False)
    chunk, total, stalls = bytes(4096), 0, 0
    while stalls < 10:  # stalled for 10 x 50 ms: the window is full
        try:
            total += s.send(chunk)
            stalls = 0
        except BlockingIOError:
            stalls += 1
            time.sleep(0.05)
    print(total, flush=True)
    s.close()


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
    elif sys.argv[1] == "seq-echo-server":
        seq_echo_server()
    elif sys.argv[1] == "seq-client":
        seq_client(int(sys.argv[2]), int(sys.argv[3]), [int(x) for x in sys.argv[4:]])
    elif sys.argv[1] == "activate":
        activate(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "pass-connected":
        pass_connected(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
    elif sys.argv[1] == "fill":
        fill(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "pingpong":
        pingpong(*map(int, sys.argv[2:6]))
    elif sys.argv[1] == "stream":
        stream(*map(int, sys.argv[2:6]))
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
