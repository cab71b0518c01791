#!/usr/bin/env python3
"""Throughput at a latency bound: the highest open-loop rate at which a gateway's p99 stays
within BOUND ms of the mock reached directly, found by search over k6 constant-arrival-rate runs.

search.py K6 GATEWAY_URL DIRECT_URL KEY OUT_PREFIX [--kinds chat,stream,embeddings]
          [--bounds 1,5,25] [--duration 5s] [--max 16000]

For each kind and bound: rates double from 250 until a probe fails the bound, then bisect until
the bracket is within 10 % (or 100 req/s). A probe passes when the gateway's p99 minus direct's
p99 at the same rate is at most the bound and neither dropped an iteration nor failed a request
(an open loop that drops iterations has outrun its target). Probes are cached per rate, so the
three bounds share them. Writes OUT_PREFIX.md and OUT_PREFIX.json; prints the table.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("k6"); ap.add_argument("gateway"); ap.add_argument("direct"); ap.add_argument("key"); ap.add_argument("out")
ap.add_argument("--kinds", default="chat,stream,embeddings"); ap.add_argument("--bounds", default="1,5,25")
ap.add_argument("--duration", default="5s"); ap.add_argument("--max", type=int, default=16000)
a = ap.parse_args()
script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "latency.js")
cache = {}


def probe(url, key, kind, rate):
    if (url, kind, rate) in cache:
        return cache[(url, kind, rate)]
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([a.k6, "run", "--quiet", "--no-color", "--summary-export", f.name, "-e", f"TARGET={url}",
                        "-e", f"KEY={key}", "-e", f"RATE={rate}", "-e", f"KIND={kind}", "-e", f"DURATION={a.duration}",
                        script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        m = json.load(open(f.name))["metrics"]
    r = dict(p99=m["http_req_duration"]["p(99)"], failed=m.get("http_req_failed", {}).get("value", 0),
             dropped=m.get("dropped_iterations", {}).get("count", 0))
    cache[(url, kind, rate)] = r
    return r


def passes(kind, rate, bound):
    d = probe(a.direct, "", kind, rate)
    g = probe(a.gateway, a.key, kind, rate)
    ok = g["p99"] - d["p99"] <= bound and not (g["failed"] or g["dropped"] or d["failed"] or d["dropped"])
    print(f"  {kind} {rate} req/s: gateway p99 {g['p99']:.2f} ms, direct {d['p99']:.2f} ms, "
          f"dropped {g['dropped']}/{d['dropped']} -> {'within' if ok else 'over'} {bound} ms", file=sys.stderr)
    return ok, g, d


results = []
for kind in a.kinds.split(","):
    for bound in [float(b) for b in a.bounds.split(",")]:
        lo, hi, at = 0, None, None
        rate = 250
        while hi is None and rate <= a.max:
            ok, g, d = passes(kind, rate, bound)
            if ok:
                lo, at = rate, (g, d)
                rate *= 2
            else:
                hi = rate
        while hi is not None and hi - lo > max(100, lo * 0.1):
            mid = (lo + hi) // 2 // 50 * 50 or 50
            if mid <= lo:
                break
            ok, g, d = passes(kind, mid, bound)
            if ok:
                lo, at = mid, (g, d)
            else:
                hi = mid
        results.append(dict(kind=kind, bound_ms=bound, rate=lo, capped=hi is None,
                            p99=at[0]["p99"] if at else None, direct_p99=at[1]["p99"] if at else None))

lines = ["| kind | p99 within | highest rate, req/s | gateway p99 there | direct p99 there |", "|---|---|---|---|---|"]
for r in results:
    rate = f"{r['rate']}{'+' if r['capped'] else ''}" if r["rate"] else "none (not even 250)"
    fmt = lambda v: f"{v:.2f} ms" if v is not None else "—"
    lines.append(f"| {r['kind']} | {r['bound_ms']:g} ms | {rate} | {fmt(r['p99'])} | {fmt(r['direct_p99'])} |")
open(a.out + ".md", "w").write("\n".join(lines) + "\n")
json.dump(results, open(a.out + ".json", "w"), indent=2)
print("\n".join(lines))
