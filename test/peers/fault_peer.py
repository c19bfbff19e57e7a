#!/usr/bin/env python3
"""A vsock peer for the fault tests (test/e2e/faults.test.ts), made to be SIGKILLed.

  fault_peer.py source PORT [stream|seqpacket]  connect to CID 1, print "connected", send without end
  fault_peer.py sink PORT                       connect to CID 1, print "connected", read and drop without end
  fault_peer.py stall PORT [stream|seqpacket]   connect to CID 1, print "connected", never read
  fault_peer.py die PORT                        connect to CID 1, print "connected", SIGKILL itself
  fault_peer.py listen                          listen on any port, print "ready PORT", never accept

Only CID 1 (loopback) is ever dialed.
"""
import os
import signal
import socket
import sys
import time


def dial(port: int, kind: str = "stream") -> socket.socket:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET if kind == "seqpacket" else socket.SOCK_STREAM)
    s.connect((1, port))
    print("connected", flush=True)
    return s


def main() -> None:
    mode = sys.argv[1]
    if mode == "listen":
        srv = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        srv.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
        srv.listen(1024)
        print("ready", srv.getsockname()[1], flush=True)
        while True:
            time.sleep(3600)
    port = int(sys.argv[2])
    kind = sys.argv[3] if len(sys.argv) > 3 else "stream"
    s = dial(port, kind)
    if mode == "source":
        chunk = bytes(range(256)) * 64  # 16 KiB, also a valid seqpacket message
        while True:
            if kind == "seqpacket":
                s.send(chunk)
            else:
                s.sendall(chunk)
    elif mode == "sink":
        while s.recv(65536):
            pass
        time.sleep(3600)
    elif mode == "stall":
        while True:
            time.sleep(3600)
    elif mode == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        sys.exit(f"unknown mode {mode}")


main()
