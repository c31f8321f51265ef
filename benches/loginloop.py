#!/usr/bin/env python3
"""connect + LOGIN + LOGOUT, N times, against one server: a whole command for
farm-bench to time in turn against another build (BENCHMARKS.md, "TLS and
privilege separation"). Usage: loginloop.py PORT N [tls]; the account is
benches/run.py's (bench / bench-Pw-7)."""

import socket
import ssl
import sys

port, n, tls = int(sys.argv[1]), int(sys.argv[2]), len(sys.argv) > 3
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def read_until(s, tag):
    buf = b""
    while tag not in buf:
        data = s.recv(4096)
        if not data:
            raise SystemExit("the server closed the connection")
        buf += data


for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        s = ctx.wrap_socket(s)
    read_until(s, b"\r\n")
    s.sendall(b'a LOGIN bench "bench-Pw-7"\r\n')
    read_until(s, b"a OK")
    s.sendall(b"b LOGOUT\r\n")
    read_until(s, b"b OK")
    s.close()
