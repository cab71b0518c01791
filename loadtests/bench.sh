#!/usr/bin/env bash
# Side-by-side throughput of the same mock upstream reached directly, through nginx (when
# installed), through bare Pingora (examples/bare_pingora.rs: same Pingora, features and
# allocator) and through catraca (loadtests/catraca-bench.yaml: YAML key, JSONL usage), one
# target after the other, ROUNDS times alternating, with wrk (installed by the script).
# Prints and writes ($OUT/bench.md, $OUT/bench.json) per target: median requests/s, median
# gateway CPU per request (utime+stime from /proc over the run / requests), peak RSS, errors,
# and every ratio to bare Pingora. A run with any non-2xx or socket error fails.
# Env: ROUNDS (3), DURATION (8s), CONNS (64), THREADS (gateway threads, 2), OUT.
# This is the first part of issue 12's runner: the Postgres/Redis mode, k6 scenarios, latency
# at fixed rates and the plots are not here yet.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
need_cargo; need_cmake
command -v wrk >/dev/null || apt_install wrk
ROUNDS="${ROUNDS:-3}"; DURATION="${DURATION:-8s}"; CONNS="${CONNS:-64}"; THREADS="${THREADS:-2}"
OUT="${OUT:-$ROOT/loadtests/results}"; mkdir -p "$OUT"
cargo build --release --quiet --bin catraca --example bare_pingora
BIN="$ROOT/target/release/catraca"; BARE="$ROOT/target/release/examples/bare_pingora"
WORK="$(mktemp -d)"; PIDS=""
trap 'kill $PIDS 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$BIN" mock-upstream --listen 127.0.0.1:19100 --threads 1 2>"$WORK/mock.log" & PIDS="$PIDS $!"
cat >"$WORK/chat.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Olá, tudo bem? Responda em uma frase."}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
EOF
sed "s/threads: 2/threads: $THREADS/" loadtests/catraca-bench.yaml >"$WORK/catraca.yaml"
NGINX=""
if command -v nginx >/dev/null; then
  cat >"$WORK/nginx.conf" <<EOF
worker_processes $THREADS;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream mock { server 127.0.0.1:19100; keepalive 128; }
  server {
    listen 127.0.0.1:18091;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
EOF
  NGINX=1
fi

start() { # name → pid of the process serving :PORT, in $SPID; port in $PORT
  case $1 in
    direct) SPID=""; PORT=19100 ;;
    nginx) nginx -c "$WORK/nginx.conf" -g 'daemon off;' & SPID=$!; PORT=18091 ;;
    bare) "$BARE" 127.0.0.1:18090 127.0.0.1:19100 "$THREADS" 2>"$WORK/bare.log" & SPID=$!; PORT=18090 ;;
    catraca) RUST_LOG=warn "$BIN" serve --config "$WORK/catraca.yaml" 2>"$WORK/catraca.log" & SPID=$!; PORT=18080 ;;
  esac
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
}
ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
hwm() { [ -n "$1" ] && awk '/VmHWM/{print $2}' "/proc/$1/status" || echo 0; }
# nginx's CPU is its workers'
tree_ticks() { local t; t=$(ticks "$1"); for c in $(pgrep -P "$1" 2>/dev/null); do t=$((t + $(ticks "$c"))); done; echo "$t"; }

if [ -z "${TARGETS:-}" ]; then
  TARGETS="direct bare catraca"; [ -n "$NGINX" ] && TARGETS="direct nginx bare catraca"
fi
: >"$WORK/runs.txt"
for round in $(seq "$ROUNDS"); do
  for t in $TARGETS; do
    start "$t"
    wrk -t2 -c"$CONNS" -d2s -s "$WORK/chat.lua" "http://127.0.0.1:$PORT/v1/chat/completions" >/dev/null
    C0=$(tree_ticks "$SPID")
    R=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/chat.lua" "http://127.0.0.1:$PORT/v1/chat/completions")
    C1=$(tree_ticks "$SPID"); RSS=$(hwm "$SPID")
    REQS=$(echo "$R" | awk '/requests in/{print $1}')
    RPS=$(echo "$R" | awk '/Requests\/sec/{print $2}')
    P50=$(echo "$R" | awk '$1=="50%"{print $2}'); P99=$(echo "$R" | awk '$1=="99%"{print $2}')
    ERRS=$(echo "$R" | awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(",","");n+=$4+$6+$8+$10} END{print n+0}')
    echo "$round $t $RPS $REQS $((C1 - C0)) $RSS $P50 $P99 $ERRS" >>"$WORK/runs.txt"
    say "round $round $t: $RPS req/s, p50 $P50 p99 $P99, errors $ERRS"
    [ -n "$SPID" ] && { kill -INT "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; }
  done
done
python3 - "$WORK/runs.txt" "$OUT" <<'EOF'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for r, t, rps, reqs, ticks, rss, p50, p99, errs in rows:
    d = by.setdefault(t, {"rps": [], "cpu_us": [], "rss_mib": [], "p50": [], "p99": [], "errors": 0})
    d["rps"].append(float(rps)); d["errors"] += int(errs)
    if t != "direct":
        d["cpu_us"].append(int(ticks) * 10000 / max(int(reqs), 1))
        d["rss_mib"].append(int(rss) / 1024)
    d["p50"].append(p50); d["p99"].append(p99)
med = lambda v: statistics.median(v) if v else None
report = {t: {"rps": med(d["rps"]), "cpu_us_per_request": med(d["cpu_us"]), "peak_rss_mib": max(d["rss_mib"]) if d["rss_mib"] else None,
              "p50": d["p50"], "p99": d["p99"], "errors": d["errors"], "runs": len(d["rps"])} for t, d in by.items()}
bare = report.get("bare", {})
lines = ["| target | req/s (median) | × bare | CPU µs/request | × bare | peak RSS MiB | p50 / p99 per run | errors |", "|---|---|---|---|---|---|---|---|"]
for t, d in report.items():
    x = lambda a, b: f"{a / b:.2f}" if a and b else "—"
    lines.append(f"| {t} | {d['rps']:.0f} | {x(d['rps'], bare.get('rps'))} | {d['cpu_us_per_request'] or 0:.1f} | {x(d['cpu_us_per_request'], bare.get('cpu_us_per_request'))} | {d['peak_rss_mib'] or 0:.0f} | {' '.join(a + '/' + b for a, b in zip(d['p50'], d['p99']))} | {d['errors']} |")
open(f"{sys.argv[2]}/bench.md", "w").write("\n".join(lines) + "\n")
json.dump(report, open(f"{sys.argv[2]}/bench.json", "w"), indent=2)
print("\n".join(lines))
sys.exit(1 if any(d["errors"] for d in report.values()) else 0)
EOF
