"""A real Socket.IO v4 client (python-socketio) for catraca's live events (tests/live.rs).

    live_client.py URL [--token T] [--via auth|header|query] [--transport websocket|polling|any]

Connects to URL (e.g. http://127.0.0.1:8081), giving the token the chosen way, and prints one
JSON line per happening, flushed:
    {"ev": "connected", "sid": ..., "transport": "websocket"}
    {"ev": "<event name>", "data": {...}, "t": <unix seconds when received>}
    {"ev": "connect_error", "data": ...}         (then exits 2)
    {"ev": "disconnected", "reason": "server disconnect", "t": ...}
Runs until its stdin closes (the test drops it), then disconnects and exits 0.
"""

import argparse
import json
import sys
import threading
import time

import engineio.payload
import socketio

# python-engineio refuses a polling answer of more than 16 packets ("Unexpected packet from
# server"); the server batches whatever is queued into one answer, so a burst of events over
# the polling transport needs a larger bound (the JavaScript client has none)
engineio.payload.Payload.max_decode_packets = 4096


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--token")
    ap.add_argument("--via", choices=["auth", "header", "query"], default="auth")
    ap.add_argument("--transport", choices=["websocket", "polling", "any"], default="websocket")
    a = ap.parse_args()

    sio = socketio.Client(reconnection=False)

    @sio.event
    def connect():
        out({"ev": "connected", "sid": sio.get_sid(), "transport": sio.transport()})

    @sio.event
    def connect_error(data):
        out({"ev": "connect_error", "data": data})

    @sio.event
    def disconnect(*args):
        # python-socketio >= 5.12 says why: "server disconnect", "client disconnect",
        # "transport error", ...
        out({"ev": "disconnected", "reason": str(args[0]) if args else None, "t": time.time()})

    @sio.on("*")
    def any_event(event, data=None):
        out({"ev": event, "data": data, "t": time.time()})

    url, auth, headers = a.url, None, {}
    if a.token is not None:
        if a.via == "auth":
            auth = {"token": a.token}
        elif a.via == "header":
            headers["Authorization"] = f"Bearer {a.token}"
        else:
            url += ("&" if "?" in url else "?") + "token=" + a.token
    transports = ["polling", "websocket"] if a.transport == "any" else [a.transport]
    try:
        sio.connect(url, auth=auth, headers=headers, transports=transports, wait_timeout=10)
    except socketio.exceptions.ConnectionError as e:
        out({"ev": "connect_error", "data": str(e)})
        sys.exit(2)

    def stop_on_eof():
        sys.stdin.read()
        sio.disconnect()

    threading.Thread(target=stop_on_eof, daemon=True).start()
    sio.wait()


if __name__ == "__main__":
    main()
