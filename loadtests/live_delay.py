"""Live-event delay: from the end of a request at the gateway to its `usage` event on a
Socket.IO client of MaxAI's `/socket.io/` (tests/sdk/live_client.py, python-socketio, in its own
process so the senders here do not hold its interpreter lock).

    live_delay.py --gateway http://127.0.0.1:18180 --admin http://127.0.0.1:18189 [-n 1000] [-c 1]

Registers a customer and creates a key (MaxAI routes), connects the client (websocket to the
admin listener, or `--socket gateway --transport polling` through the gateway port), warms up,
then sends N chat requests from C threads and matches each answer's `x-request-id` with the
event's `request_id`. Two delays, p50/p90/p99/max in ms, both against the client process's
receive time (same machine, same wall clock):
  - from the gateway's own end of the request (the event's `completed_at`: start + latency,
    millisecond resolution) — the figure of record;
  - from this process having read the whole answer.
Exits 1 if any event is missing.
"""


import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "sdk", "live_client.py")


def post(base, path, body, token=None):
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    h = {"content-type": "application/json"}
    if token:
        h["authorization"] = f"Bearer {token}"
    c.request("POST", path, json.dumps(body), h)
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status >= 300:
        sys.exit(f"{path}: {r.status} {data[:300]!r}")
    return json.loads(data)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(xs):
    return {"p50_ms": round(pct(xs, 50), 1), "p90_ms": round(pct(xs, 90), 1),
            "p99_ms": round(pct(xs, 99), 1), "max_ms": round(max(xs), 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--admin", required=True)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("-c", type=int, default=1, help="client threads sending at once")
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--socket", choices=["admin", "gateway"], default="admin")
    ap.add_argument("--transport", choices=["websocket", "polling"], default="websocket")
    a = ap.parse_args()

    email = f"live-{uuid.uuid4().hex[:12]}@example.com"
    tok = post(a.gateway, "/api/auth/register",
               {"email": email, "password": "senha-forte-1", "name": "Live"})["access_token"]
    key = post(a.gateway, "/api/keys", {"name": "live-delay"}, tok)["key"]

    # the socket client in its own process; its lines carry its own receive time ("t")
    url = a.admin if a.socket == "admin" else a.gateway
    client = subprocess.Popen(
        [sys.executable, CLIENT, url, "--token", tok, "--via", "auth", "--transport", a.transport],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    recv = {}  # request_id -> (receive time, gateway end), wall clock
    lock = threading.Lock()
    connected = threading.Event()

    def read():
        for line in client.stdout:
            v = json.loads(line)
            if v["ev"] == "connected":
                connected.set()
            elif v["ev"] == "usage":
                d = v["data"]
                end = datetime.fromisoformat(d["completed_at"]).timestamp()
                with lock:
                    recv.setdefault(d["request_id"], (v["t"], end))
            elif v["ev"] == "connect_error":
                sys.exit(f"socket refused: {v}")

    threading.Thread(target=read, daemon=True).start()
    if not connected.wait(15):
        sys.exit("the socket client did not connect")

    body = json.dumps({"model": a.model, "messages": [{"role": "user", "content": "oi"}]})
    u = urllib.parse.urlsplit(a.gateway)
    ends = {}  # request_id -> when this process had the whole answer, wall clock

    def send(count):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        for _ in range(count):
            c.request("POST", "/v1/chat/completions", body,
                      {"content-type": "application/json", "authorization": f"Bearer {key}"})
            r = c.getresponse()
            r.read()
            t = time.time()
            rid = r.getheader("x-request-id")
            if r.status != 200 or not rid:
                sys.exit(f"chat: {r.status}")
            with lock:
                ends[rid] = t
        c.close()

    send(20)  # warm-up: connections, the key cache, the first batches
    time.sleep(1)
    with lock:
        ends.clear()
    t0 = time.monotonic()
    per = [a.n // a.c + (1 if i < a.n % a.c else 0) for i in range(a.c)]
    ts = [threading.Thread(target=send, args=(k,)) for k in per]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    took = time.monotonic() - t0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with lock:
            if all(r in recv for r in ends):
                break
        time.sleep(0.05)
    client.stdin.close()
    client.wait(10)
    with lock:
        seen = [r for r in ends if r in recv]
        from_gateway = [(recv[r][0] - recv[r][1]) * 1000 for r in seen]
        from_client = [(recv[r][0] - ends[r]) * 1000 for r in seen]
        missing = len(ends) - len(seen)
    print(json.dumps({
        "requests": len(ends), "threads": a.c, "req_per_s": round(len(ends) / took, 1),
        "socket": f"{a.socket}/{a.transport}", "events": len(seen), "missing": missing,
        "gateway_end_to_socket": summary(from_gateway),
        "client_end_to_socket": summary(from_client),
    }))
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
