#!/usr/bin/env python3
"""Client side of loadtests/tokia_scale.sh (stdlib only).

tokia_scale.py seq HOST PORT KEY PATH N
    N GET requests one after the other on one keep-alive connection; every answer must be
    200. Prints JSON: n, p50/p90/p99/max/mean in ms (client side: request written to the
    last body byte read), the body size of the last answer.
tokia_scale.py export HOST PORT KEY PATH PID
    One GET of a CSV export while a thread samples the server process's VmRSS every 2 ms.
    Prints JSON: status, ttfb_ms (request written to the status line read), first_row_ms (to
    the end of the first data row), total_ms, bytes,
    rows (lines after the header), VmHWM of PID before and after, and the highest sampled VmRSS
    (KiB).
tokia_scale.py table RESULTS.json
    The markdown table of a results file the script assembled.
"""
import http.client
import json
import statistics
import sys
import threading
import time


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


def seq(host, port, key, path, n):
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    hdr = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    times, size = [], 0
    for i in range(int(n)):
        t0 = time.perf_counter()
        c.request("GET", path, headers=hdr)
        r = c.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            sys.exit(f"{path}: request {i} answered {r.status}: {body[:300]!r}")
        size = len(body)
    print(json.dumps({
        "n": len(times), "p50": round(pct(times, 50), 2), "p90": round(pct(times, 90), 2),
        "p99": round(pct(times, 99), 2), "max": round(max(times), 2),
        "mean": round(statistics.fmean(times), 2), "bytes": size,
    }))


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def export(host, port, key, path, pid):
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], status_kib(pid, "VmRSS"))
            except OSError:
                return
            time.sleep(0.002)

    hwm_before = status_kib(pid, "VmHWM")
    rss_before = status_kib(pid, "VmRSS")
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    c = http.client.HTTPConnection(host, int(port), timeout=600)
    t0 = time.perf_counter()
    c.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    r = c.getresponse()
    ttfb = time.perf_counter() - t0
    total_bytes, lines, first = 0, 0, None
    while chunk := r.read1(1 << 16):
        total_bytes += len(chunk)
        lines += chunk.count(b"\n")
        if first is None and lines >= 2:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    done.set()
    t.join()
    print(json.dumps({
        "status": r.status, "ttfb_ms": round(ttfb * 1000, 1),
        "first_row_ms": round((first or total) * 1000, 1), "total_ms": round(total * 1000, 1),
        "bytes": total_bytes, "rows": max(0, lines - 1),
        "rss_before_kib": rss_before, "rss_peak_kib": max(peak[0], rss_before),
        "hwm_before_kib": hwm_before, "hwm_after_kib": status_kib(pid, "VmHWM"),
    }))


def table(path):
    res = json.load(open(path))
    out = ["| route | p50 ms | p90 ms | p99 ms | max ms | body bytes |", "|---|---|---|---|---|---|"]
    for name, r in res["routes"].items():
        out.append(f"| `{name}` | {r['p50']} | {r['p90']} | {r['p99']} | {r['max']} | {r['bytes']:,} |")
    e = res["export"]
    out += ["", "| export.csv, one year | TTFB ms | first row ms | total ms | bytes | rows | RSS before → peak (MiB) | VmHWM before → after (MiB) |",
            "|---|---|---|---|---|---|---|---|",
            f"| `{res['export_path']}` | {e['ttfb_ms']} | {e['first_row_ms']} | {e['total_ms']:,} | {e['bytes']:,} | {e['rows']:,} "
            f"| {e['rss_before_kib'] / 1024:.1f} → {e['rss_peak_kib'] / 1024:.1f} "
            f"| {e['hwm_before_kib'] / 1024:.1f} → {e['hwm_after_kib'] / 1024:.1f} |"]
    c = res["chat"]
    out += ["", "| chat (wrk) | req/s per round | median req/s |", "|---|---|---|"]
    for k in ("plain", "session"):
        out.append(f"| {'with' if k == 'session' else 'without'} `x-tokia-session-id` | "
                   f"{', '.join(str(round(x)) for x in c[k])} | {round(statistics.median(c[k]))} |")
    out.append(f"\nratio with/without: {statistics.median(c['session']) / statistics.median(c['plain']):.3f}")
    print("\n".join(out))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"seq": seq, "export": export, "table": table}[cmd](*args)
