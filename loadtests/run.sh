#!/usr/bin/env bash
# Direct-vs-gateway benchmark, one run, same client (k6), same mock upstream:
#   1. k6 → mock upstream                      (the floor)
#   2. k6 → catraca → mock upstream            (the product)
# Prints requests/s and p50/p99 latency of both, their ratio, and catraca's peak RSS.
#   3. with DB=1, k6 → catraca with keys and usage in Postgres → mock upstream
#   4. with LIMITS=1, k6 → catraca with a key under per-key RPM/RPD limits (never reached), and
#      with a key under every limit kind incl. TPM (so each request's prompt is token-estimated);
#      with REDIS=1 also, the same two keys through a second gateway whose limiter is Redis
# Env: VUS (32), DURATION (20s), STREAM (0|1), DB (0|1), MOCK_THREADS (1), OUT (loadtests/results).
# Machines here are shared and noisy: compare the ratio, not the absolute numbers.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
need_cargo
need_cmake
K6="$(need_k6)"
VUS="${VUS:-32}"; DURATION="${DURATION:-20s}"; STREAM="${STREAM:-0}"
OUT="${OUT:-$ROOT/loadtests/results}"; mkdir -p "$OUT"
cargo build --release --quiet
BIN="$ROOT/target/release/catraca"

rm -f /tmp/catraca-bench-usage.jsonl
"$BIN" mock-upstream --listen 127.0.0.1:19100 --threads "${MOCK_THREADS:-1}" 2>"$OUT/mock.log" &
MOCK=$!
RUST_LOG=warn "$BIN" serve --config loadtests/catraca-bench.yaml 2>"$OUT/gateway.log" &
GW=$!
trap 'kill $MOCK $GW 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf http://127.0.0.1:18080/healthz >/dev/null && curl -sf http://127.0.0.1:19100/v1/models >/dev/null && break
  sleep 0.1
done

run() { # name target key
  "$K6" run --quiet --no-color --summary-export "$OUT/$1.json" \
    -e TARGET="$2" -e KEY="$3" -e STREAM="$STREAM" -e VUS="$VUS" -e DURATION="$DURATION" \
    loadtests/chat.js >"$OUT/$1.txt" 2>&1 || { cat "$OUT/$1.txt"; die "k6 run $1 failed"; }
}
say "k6: $VUS VUs, $DURATION, stream=$STREAM — direct to the mock"
run direct http://127.0.0.1:19100 ""
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime+stime, clock ticks
say "k6: $VUS VUs, $DURATION, stream=$STREAM — through catraca"
GW0=$(cpu $GW); MK0=$(cpu $MOCK)
run gateway http://127.0.0.1:18080 sk-bench
GW_CPU=$(( $(cpu $GW) - GW0 )); MOCK_CPU=$(( $(cpu $MOCK) - MK0 ))
if [ "${LIMITS:-0}" = 1 ]; then
  say "k6: $VUS VUs, $DURATION, stream=$STREAM — through catraca with a rate-limited key"
  run gateway_limited http://127.0.0.1:18080 sk-bench-limited
  say "k6: $VUS VUs, $DURATION, stream=$STREAM — through catraca with every limit incl. TPM"
  run gateway_tpm http://127.0.0.1:18080 sk-bench-tpm
fi
REDIS_TRIPS=""
if [ "${LIMITS:-0}" = 1 ] && [ "${REDIS:-0}" = 1 ]; then
  need_redis
  sed 's/127.0.0.1:18080/127.0.0.1:18082/; s/127.0.0.1:19090/127.0.0.1:19092/' loadtests/catraca-bench.yaml > "$OUT/catraca-redis.yaml"
  echo "limits: {redis_url: \"redis://127.0.0.1:6379\"}" >> "$OUT/catraca-redis.yaml"
  redis-cli -h 127.0.0.1 --scan --pattern 'catraca:rl:*' | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
  RUST_LOG=warn "$BIN" serve --config "$OUT/catraca-redis.yaml" 2>"$OUT/gateway-redis.log" &
  GWR=$!
  trap 'kill $MOCK $GW $GWR 2>/dev/null || true' EXIT
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18082/healthz >/dev/null && break; sleep 0.1; done
  say "k6: $VUS VUs, $DURATION, stream=$STREAM — Redis limiter, rate-limited key"
  run redis_limited http://127.0.0.1:18082 sk-bench-limited
  say "k6: $VUS VUs, $DURATION, stream=$STREAM — Redis limiter, every limit incl. TPM"
  run redis_tpm http://127.0.0.1:18082 sk-bench-tpm
  sleep 1
  REDIS_TRIPS=$(curl -sf http://127.0.0.1:19092/metrics | awk '/^catraca_redis_round_trips_total/ {s += $2} END {print s+0}')
fi
RSS_KB=$(awk '/VmHWM/ {print $2}' /proc/$GW/status)
EVENTS=$(wc -l < /tmp/catraca-bench-usage.jsonl)

DB_ROWS=""
if [ "${DB:-0}" = 1 ]; then
  # the same gateway with keys and usage in Postgres (a scratch database, dropped after)
  need_postgres
  DBNAME="catraca_load_$$"
  psql "$DATABASE_URL" -qc "CREATE DATABASE $DBNAME" >/dev/null
  DBURL="${DATABASE_URL%/*}/$DBNAME"
  "$BIN" migrate --database-url "$DBURL" 2>/dev/null
  psql "$DBURL" -qc "WITH o AS (INSERT INTO organization (name) VALUES ('load') RETURNING organization_id)
    INSERT INTO api_key (organization_id, key_hash, prefix, name)
    SELECT organization_id, sha256('sk-bench-db'::bytea), 'sk-bench', 'load' FROM o" >/dev/null
  sed 's/127.0.0.1:18080/127.0.0.1:18081/; s/127.0.0.1:19090/127.0.0.1:19091/' loadtests/catraca-bench.yaml > "$OUT/catraca-db.yaml"
  (cd "$OUT" && RUST_LOG=warn DATABASE_URL="$DBURL" exec "$BIN" serve --config "$OUT/catraca-db.yaml" 2>"$OUT/gateway-db.log") &
  GWDB=$!
  trap 'kill $MOCK $GW $GWDB 2>/dev/null || true; psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18081/healthz >/dev/null && break; sleep 0.1; done
  say "k6: $VUS VUs, $DURATION, stream=$STREAM — through catraca with Postgres keys and usage"
  run gateway_db http://127.0.0.1:18081 sk-bench-db
  sleep 2 # let the writer flush
  DB_ROWS=$(psql "$DBURL" -qtAc "SELECT count(*) FROM usage_event")
fi

[ "${DB:-0}" = 1 ] || rm -f "$OUT/gateway_db.json"
[ "${LIMITS:-0}" = 1 ] || rm -f "$OUT/gateway_limited.json" "$OUT/gateway_tpm.json"
[ -n "$REDIS_TRIPS" ] || rm -f "$OUT/redis_limited.json" "$OUT/redis_tpm.json"
python3 - "$OUT" "$RSS_KB" "$EVENTS" "$GW_CPU" "$MOCK_CPU" "$(getconf CLK_TCK)" "$DB_ROWS" "$REDIS_TRIPS" <<'PY'
import json, sys
out, rss_kb, events = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gw_cpu, mock_cpu, hz = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def load(n):
    m = json.load(open(f"{out}/{n}.json"))["metrics"]
    d = m["http_req_duration"]
    fails = m.get("http_req_failed", {}).get("value", 0)
    checks = m.get("checks", {})
    return m["http_reqs"]["rate"], m["http_reqs"]["count"], d["med"], d["p(99)"], fails, checks.get("fails", 0)
d, g = load("direct"), load("gateway")
print(f"{'':10} {'req/s':>10} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
for name, r in (("direct", d), ("catraca", g)):
    print(f"{name:10} {r[0]:10.0f} {r[1]:9d} {r[2]:8.2f} {r[3]:8.2f} {r[4]*100:6.2f}%")
print(f"ratio catraca/direct: req/s {g[0]/d[0]:.2f}  p50 {g[2]/d[2]:.2f}x  p99 {g[3]/d[3]:.2f}x")
n = g[1]
print(f"CPU per request during the catraca run: catraca {gw_cpu/hz/n*1e6:.1f} µs, mock {mock_cpu/hz/n*1e6:.1f} µs "
      f"(ratio {gw_cpu/max(mock_cpu,1):.2f})")
import os
if os.path.exists(f"{out}/gateway_limited.json"):
    q = load("gateway_limited")
    print(f"{'limited':10} {q[0]:10.0f} {q[1]:9d} {q[2]:8.2f} {q[3]:8.2f} {q[4]*100:6.2f}%")
    print(f"ratio limited/unlimited key: req/s {q[0]/g[0]:.2f}  p50 {q[2]/g[2]:.2f}x  p99 {q[3]/g[3]:.2f}x")
for name, label in (("gateway_tpm", "local+tpm"), ("redis_limited", "redis"), ("redis_tpm", "redis+tpm")):
    if os.path.exists(f"{out}/{name}.json"):
        q = load(name)
        print(f"{label:10} {q[0]:10.0f} {q[1]:9d} {q[2]:8.2f} {q[3]:8.2f} {q[4]*100:6.2f}%")
        print(f"ratio {label}/unlimited key: req/s {q[0]/g[0]:.2f}  p50 {q[2]/g[2]:.2f}x  p99 {q[3]/g[3]:.2f}x")
if len(sys.argv) > 8 and sys.argv[8]:
    n = load("redis_limited")[1] + load("redis_tpm")[1]
    print(f"Redis round trips: {sys.argv[8]} for {n} requests = {int(sys.argv[8])/n:.3f} per request")
if os.path.exists(f"{out}/gateway_db.json") and sys.argv[7]:
    p = load("gateway_db")
    print(f"{'catraca+pg':10} {p[0]:10.0f} {p[1]:9d} {p[2]:8.2f} {p[3]:8.2f} {p[4]*100:6.2f}%")
    print(f"ratio catraca+pg/catraca: req/s {p[0]/g[0]:.2f}  p50 {p[2]/g[2]:.2f}x  p99 {p[3]/g[3]:.2f}x; "
          f"usage rows in Postgres: {sys.argv[7]} (requests: {p[1]})")
served = g[1] + sum(load(n)[1] for n in ("gateway_limited", "gateway_tpm") if os.path.exists(f"{out}/{n}.json"))
print(f"catraca peak RSS: {rss_kb/1024:.1f} MiB; usage events written: {events} (requests it served: {served})")
PY
