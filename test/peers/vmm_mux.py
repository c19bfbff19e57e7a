#!/usr/bin/env python3
"""A VMM-side hybrid vsock multiplexer for the tests: what Firecracker's muxer
does on the host, bridged to real AF_VSOCK on CID 1 inside the test VM.

  vmm_mux.py UDS [options]

Host-initiated: listens on the Unix socket UDS; each connection must send
"CONNECT <port>\\n" (verb case-insensitive, at most 32 bytes, read byte by
byte so nothing after the line is taken); the mux connects AF_VSOCK to
CID 1:<port> and answers "OK <host port>\\n" with host ports counting up from
2^30 as Firecracker's do, then bridges both ways. If nothing listens on the
guest port it closes the Unix connection without a byte, as Firecracker does.

Guest-initiated (--guest-port P): listens on AF_VSOCK CID 1 port P (the "guest"
dialing host port P) and bridges each connection to the Unix socket UDS_P with
no preamble; if nothing listens there the guest's connection is closed at once
(a real VMM resets it; having accepted, we can only close).

Options (quirks of real VMMs, from Firecracker 81b38b9
src/vmm/src/devices/virtio/vsock/unix/muxer.rs and csm/connection.rs):
  --coalesce         send the guest's first bytes (waited for up to 1 s) in the same write as "OK ..."
  --silent-close     read the request, then close without a byte
  --never-answer     read the request and never answer
  --split-sensitive  read the request from a non-blocking socket as Firecracker does: a request
                     not already whole when the socket first turns readable is dropped
  --fail-first N     silently close the first N requests (a guest agent still booting)
  --reply LINE       answer LINE (a "\\n" is added) instead of "OK <port>"
  --shutdown fc|ch   the host's SHUT_WR: fc = full close of both directions (Firecracker,
                     the default), ch = forwarded as a half-close (Cloud Hypervisor >= v53)
  --guest-port P     also serve guest-initiated connections for host port P (repeatable;
                     "any" picks a free port)
Prints "ready" (and "guest-port P" per guest listener) once listening.
"""
import argparse
import os
import select
import signal
import socket
import sys
import threading

LINE_LIMIT = 32  # Firecracker's request buffer
BUF = 256 * 1024


def log(*args: object) -> None:
    if ARGS.verbose:
        print("vmm_mux:", *args, file=sys.stderr, flush=True)


def read_request(conn: socket.socket) -> "int | None":
    """The guest port of a CONNECT request, or None for a request Firecracker would drop."""
    buf = b""
    if ARGS.split_sensitive:
        # Firecracker: read_exact(10) then one byte at a time on a non-blocking socket;
        # any WouldBlock is an error and the connection is dropped.
        select.select([conn], [], [])
        conn.setblocking(False)
    try:
        while len(buf) < LINE_LIMIT and not buf.endswith(b"\n"):
            byte = conn.recv(1)
            if not byte:
                return None
            buf += byte
    except BlockingIOError:
        log("request split across writes, dropped:", buf)
        return None
    finally:
        conn.setblocking(True)
    words = buf.decode("utf-8", "replace").split()
    if len(words) != 2 or words[0].lower() != "connect" or not words[1].isdigit() or int(words[1]) > 0xFFFFFFFF:
        log("bad request", buf)
        return None
    return int(words[1])


def shut(s: socket.socket, how: int) -> None:
    try:
        s.shutdown(how)
    except OSError:
        pass


def bridge(host: socket.socket, guest: socket.socket, forward_half_close: bool) -> None:
    """Copies both ways until both are done, then closes both."""

    def host_to_guest() -> None:
        try:
            while True:
                data = host.recv(BUF)
                if not data:
                    break
                guest.sendall(data)
        except OSError:
            pass
        if forward_half_close:
            shut(guest, socket.SHUT_WR)
        else:
            # Firecracker: host EOF → SHUTDOWN(RCV|SEND) to the guest, then the connection goes.
            shut(guest, socket.SHUT_RDWR)
            shut(host, socket.SHUT_RDWR)

    def guest_to_host() -> None:
        try:
            while True:
                data = guest.recv(BUF)
                if not data:
                    break
                host.sendall(data)
        except OSError:
            pass
        shut(host, socket.SHUT_WR)

    threads = [threading.Thread(target=f, daemon=True) for f in (host_to_guest, guest_to_host)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    host.close()
    guest.close()


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.host_port = (1 << 30) - 1

    def next(self) -> "tuple[int, int]":
        with self.lock:
            self.requests += 1
            self.host_port += 1
            return self.requests, self.host_port


COUNTER = Counter()


def host_initiated(conn: socket.socket) -> None:
    port = read_request(conn)
    if port is None:
        conn.close()
        return
    n, host_port = COUNTER.next()
    if ARGS.silent_close or n <= ARGS.fail_first:
        log("silent close of request", n)
        conn.close()
        return
    if ARGS.never_answer:
        # Hold it until the client gives up.
        while conn.recv(BUF):
            pass
        conn.close()
        return
    if ARGS.reply is not None:
        conn.sendall(ARGS.reply.encode() + b"\n")
        conn.close()
        return
    guest = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        guest.connect((1, port))
    except OSError as e:
        log("guest port", port, "refused:", e)
        guest.close()
        conn.close()  # Firecracker: "If no one is listening, Firecracker will terminate the host connection."
        return
    reply = f"OK {host_port}\n".encode()
    if ARGS.coalesce:
        ready, _, _ = select.select([guest], [], [], 1.0)
        first = guest.recv(BUF) if ready else b""
        conn.sendall(reply + first)
        if ready and not first:
            shut(conn, socket.SHUT_WR)
    else:
        conn.sendall(reply)
    bridge(conn, guest, ARGS.shutdown == "ch")


def guest_initiated(guest: socket.socket, port: int) -> None:
    host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        host.connect(f"{ARGS.uds}_{port}")
    except OSError as e:
        log(f"{ARGS.uds}_{port}:", e)
        host.close()
        guest.close()
        return
    bridge(host, guest, ARGS.shutdown == "ch")


def serve(listener: socket.socket, handle, *extra) -> None:
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn, *extra), daemon=True).start()


def main() -> None:
    if os.path.exists(ARGS.uds):
        os.unlink(ARGS.uds)
    uds = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    uds.bind(ARGS.uds)
    uds.listen(1024)
    threads = [threading.Thread(target=serve, args=(uds, host_initiated), daemon=True)]
    ports = []
    for p in ARGS.guest_port:
        v = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        v.bind((1, socket.VMADDR_PORT_ANY if p == "any" else int(p)))
        v.listen(1024)
        port = v.getsockname()[1]
        ports.append(port)
        threads.append(threading.Thread(target=serve, args=(v, guest_initiated, port), daemon=True))
    for t in threads:
        t.start()
    for port in ports:
        print("guest-port", port, flush=True)
    print("ready", flush=True)
    try:
        threads[0].join()
    finally:
        os.unlink(ARGS.uds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("uds")
    parser.add_argument("--coalesce", action="store_true")
    parser.add_argument("--silent-close", action="store_true")
    parser.add_argument("--never-answer", action="store_true")
    parser.add_argument("--split-sensitive", action="store_true")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--reply")
    parser.add_argument("--shutdown", choices=("fc", "ch"), default="fc")
    parser.add_argument("--guest-port", action="append", default=[])
    parser.add_argument("--verbose", action="store_true")
    ARGS = parser.parse_args()
    # SIGTERM ends main()'s join with SystemExit, so the socket file is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        main()
    except KeyboardInterrupt:
        pass
