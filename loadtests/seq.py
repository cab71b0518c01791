#!/usr/bin/env python3
"""Sequential keep-alive HTTP/1.1 client for instruction counts (loadtests/callgrind.sh).

seq.py HOST PORT N [KEY] [PATH] [BODY]: sends N identical POSTs one after the other on one
connection and exits non-zero unless every answer is 200. One request at a time keeps the
count per request free of batching effects, so two builds compare exactly.
"""
import socket
import sys

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
key = sys.argv[4] if len(sys.argv) > 4 else "sk-bench"
path = sys.argv[5] if len(sys.argv) > 5 else "/v1/chat/completions"
body = (sys.argv[6] if len(sys.argv) > 6 else
        '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Olá, tudo bem? Responda em uma frase."}]}').encode()
req = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
       f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
s = socket.create_connection((host, port))
f = s.makefile("rb")
for i in range(n):
    s.sendall(req)
    status = f.readline()
    if b" 200 " not in status:
        sys.exit(f"request {i}: {status!r}")
    length, chunked = None, False
    while (line := f.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode("latin-1").partition(":")
        if k.lower() == "content-length":
            length = int(v)
        elif k.lower() == "transfer-encoding" and "chunked" in v.lower():
            chunked = True
    if chunked:
        while (size := int(f.readline().split(b";")[0], 16)) > 0:
            f.read(size + 2)
        f.readline()
    else:
        f.read(length or 0)
