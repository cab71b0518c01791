#!/usr/bin/env bash
# RSS against open streams: bare Pingora and catraca (bench config, 1 thread) each hold N
# streams at once (loadtests/streams.py: 20 chunks 500 ms apart) for every N in COUNTS; peak
# RSS, completed streams and errors per step into $OUT/streams.md, streams.json and
# rss-streams.png. Any error fails the run. A proxied stream holds two descriptors: the
# script raises its soft limit to the hard one, and COUNTS must stay under half of it.
# Env: COUNTS ("1000 2500 5000 9500"), OUT.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
need_cargo; need_cmake
ulimit -n "$(ulimit -Hn)"
OUT="${OUT:-$ROOT/loadtests/results}"; mkdir -p "$OUT"
cargo build --release --quiet --bin catraca --example bare_pingora
BIN="$ROOT/target/release/catraca"; BARE="$ROOT/target/release/examples/bare_pingora"
WORK="$(mktemp -d)"; PIDS=""
trap 'kill $PIDS 2>/dev/null || true; rm -rf "$WORK"' EXIT
sed "s/threads: 2/threads: 1/" loadtests/catraca-bench.yaml >"$WORK/catraca.yaml"
"$BIN" mock-upstream --listen 127.0.0.1:19100 --threads 1 2>"$WORK/mock.log" & PIDS="$PIDS $!"
: >"$WORK/rows.txt"
for n in ${COUNTS:-1000 2500 5000 9500}; do
  for t in bare catraca; do
    if [ "$t" = bare ]; then "$BARE" 127.0.0.1:18090 127.0.0.1:19100 1 2>"$WORK/bare.log" & G=$!; P=18090
    else RUST_LOG=warn "$BIN" serve --config "$WORK/catraca.yaml" 2>"$WORK/catraca.log" & G=$!; P=18080; fi
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$P/" && break; sleep 0.1; done
    R=$(python3 loadtests/streams.py 127.0.0.1 "$P" sk-bench "$G" "$n" 20 500 || true)
    say "$t, $n streams: $R"
    echo "$t $n $R" >>"$WORK/rows.txt"
    kill -INT "$G" 2>/dev/null; wait "$G" 2>/dev/null || true
  done
done
PY=python3; [ -x "$ROOT/target/pyenv/bin/python" ] && PY="$ROOT/target/pyenv/bin/python"
"$PY" - "$WORK/rows.txt" "$OUT" <<'PYEOF'
import json, sys
rows = []
for line in open(sys.argv[1]):
    t, n, js = line.split(" ", 2)
    rows.append(dict(target=t, n=int(n), **json.loads(js)))
md = ["| target | streams | completed | errors | peak RSS MiB | KiB per stream |", "|---|---|---|---|---|---|"]
for r in rows:
    md.append(f"| {r['target']} | {r['n']} | {r['completed']} | {r['errors']} | {r['peak_rss_mib']:.0f} | {r['peak_rss_mib'] * 1024 / r['n']:.0f} |")
open(f"{sys.argv[2]}/streams.md", "w").write("\n".join(md) + "\n")
json.dump(rows, open(f"{sys.argv[2]}/streams.json", "w"), indent=2)
print("\n".join(md))
try:
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for t in ("bare", "catraca"):
        pts = [r for r in rows if r["target"] == t]
        ax.plot([r["n"] for r in pts], [r["peak_rss_mib"] for r in pts], marker="o", label=t)
    ax.set_xlabel("streams open at once"); ax.set_ylabel("peak RSS, MiB"); ax.grid(alpha=0.3); ax.legend()
    ax.set_title("RSS against open streams (1 thread)")
    fig.savefig(f"{sys.argv[2]}/rss-streams.png", dpi=110, bbox_inches="tight")
except ImportError:
    print("matplotlib missing: no plot")
sys.exit(1 if any(r["errors"] for r in rows) else 0)
PYEOF
