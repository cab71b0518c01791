#!/usr/bin/env bash
# Request cost against keys in the store: the full target (key, limits and usage in Postgres,
# a prepaid balance, Redis limits) with COUNTS keys in the store (default 100 10000 100000
# 1000000), one bench.sh run each (wrk, then k6 open loop at 500 req/s, chat). Prints and writes
# $OUT/keys.md, keys.json and keys.png (req/s, CPU µs/request and p99 at 500 req/s against
# keys). Env: COUNTS, DURATION (4s), OUT (loadtests/results).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
OUT="${OUT:-$ROOT/loadtests/results}"; mkdir -p "$OUT"
: >"$OUT/keys.txt"
for n in ${COUNTS:-100 10000 100000 1000000}; do
  say "keys: $n"
  FULL_KEYS=$n OUT="$OUT/keys-$n" TARGETS=full ROUNDS=1 DURATION="${DURATION:-4s}" RATES=500 KINDS=chat \
    LAT_DURATION=6s loadtests/bench.sh >"$OUT/keys-$n.log" 2>&1 || die "bench.sh failed for $n keys (see $OUT/keys-$n.log)"
  python3 - "$OUT/keys-$n" "$n" >>"$OUT/keys.txt" <<'PY'
import json, sys
b = json.load(open(f"{sys.argv[1]}/bench.json"))["full"]
l = json.load(open(f"{sys.argv[1]}/latency.json"))["full/chat"][0]
print(sys.argv[2], b["rps"], b["cpu_us_per_request"], l["p50"], l["p99"])
PY
done
K6="$(need_k6)"
"$(dirname "$K6")/python" - "$OUT/keys.txt" "$OUT" <<'PY'
import json, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
data = [dict(keys=int(k), rps=float(r), cpu_us=float(c), p50=float(p5), p99=float(p9)) for k, r, c, p5, p9 in rows]
lines = ["| keys in the store | req/s (wrk) | CPU µs/request | p50 at 500 req/s | p99 at 500 req/s |", "|---|---|---|---|---|"]
lines += [f"| {d['keys']:,} | {d['rps']:,.0f} | {d['cpu_us']:.1f} | {d['p50']:.2f} ms | {d['p99']:.2f} ms |" for d in data]
open(f"{sys.argv[2]}/keys.md", "w").write("\n".join(lines) + "\n")
json.dump(data, open(f"{sys.argv[2]}/keys.json", "w"), indent=2)
print("\n".join(lines))
try:
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5)); ax2 = ax.twinx()
    ks = [d["keys"] for d in data]
    ax.plot(ks, [d["cpu_us"] for d in data], marker="o", color="C0", label="gateway CPU µs/request (wrk)")
    ax2.plot(ks, [d["p99"] for d in data], marker="s", color="C1", label="p99 ms at 500 req/s")
    ax.set_xscale("log"); ax.set_xlabel("API keys in the store"); ax.set_ylabel("CPU µs/request"); ax2.set_ylabel("p99 ms")
    ax.set_ylim(bottom=0); ax2.set_ylim(bottom=0)
    ax.set_title("everything on: request cost against keys in the store")
    fig.legend(loc="lower right", fontsize=8); ax.grid(alpha=0.3)
    fig.savefig(f"{sys.argv[2]}/keys.png", dpi=110, bbox_inches="tight")
except ImportError:
    print("matplotlib missing: no plot")
PY
