#!/usr/bin/env python3
"""Independent TCP peers for the `vsock forward` tests: python3's own sockets.

  py_tcp.py echo-server            listen on 127.0.0.1 (any port), print "ready PORT", echo every
                                   connection, half-close after the client's EOF
  py_tcp.py clients PORT N CONNS   CONNS concurrent connections to 127.0.0.1:PORT; each sends N pattern
                                   bytes, half-closes, reads to EOF; print "BYTES SHA256" per connection
                                   ("reset BYTES" if it was reset instead)
"""
import socket
import sys
import threading

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from py_peer import ResetAfter, echo, hash_to_eof, pattern, send_then_half_close  # noqa: E402


def echo_server() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    print(f"ready {srv.getsockname()[1]}", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def one_client(port: int, data: bytes, out: list, i: int) -> None:
    """Prints "BYTES SHA256", or "reset BYTES" when the connection was reset (RST, not EOF)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        sender = send_then_half_close(s, data)
        try:
            n, digest = hash_to_eof(s)
            out[i] = f"{n} {digest}"
        except ResetAfter as reset:
            out[i] = f"reset {reset.n}"
        sender.join()


def clients(port: int, n: int, conns: int) -> None:
    data = pattern(n)
    out = [""] * conns
    threads = [threading.Thread(target=one_client, args=(port, data, out, i)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "echo-server":
        echo_server()
    elif sys.argv[1] == "clients":
        clients(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
