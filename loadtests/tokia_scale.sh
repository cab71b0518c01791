#!/usr/bin/env bash
# Tokia's routes at a million usage events (#14): one organization with a year of traffic
# seeded straight into Postgres (loadtests/tokia_scale_seed.sql: events, rollup, key totals,
# ledger debits and top-ups, balance, as the usage writer and the ledger leave them), then, against
# the release binary (`catraca serve`: the gateway and the admin app in one process):
#   - N sequential requests (one keep-alive connection, client-side timings) to
#     me/usage-summary, me/sessions and usage/by-key, at their default and largest windows;
#   - one usage/export.csv over the last 365 days: time to first byte, to the first row, total,
#     bytes, rows, and the process's RSS (sampled every 2 ms) and VmHWM around it;
#   - chat requests/s through the gateway to the mock upstream with wrk, without and with
#     x-tokia-session-id, ROUNDS times alternating, and the ratio of the medians.
# Prints and writes $OUT/tokia_scale.md and tokia_scale.json ($OUT/tokia_scale.key holds the
# scratch tenant's key for REUSE=1).
# Env: EVENTS (1000000), N (200 requests per route), DURATION (5s per wrk round), ROUNDS (3),
# CONNS (32), OUT (loadtests/results), DBNAME (catraca_scale; dropped at the end unless KEEP=1),
# BIN (a catraca binary; default: cargo build --release), SEED_ONLY=1 (stop once seeded, keep
# the database), REUSE=1 (measure an existing seeded DBNAME; no new seed).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
need_postgres
command -v wrk >/dev/null || apt_install wrk
EVENTS="${EVENTS:-1000000}"; N="${N:-200}"; DURATION="${DURATION:-5s}"; ROUNDS="${ROUNDS:-3}"
CONNS="${CONNS:-32}"; DBNAME="${DBNAME:-catraca_scale}"
OUT="${OUT:-$ROOT/loadtests/results}"; mkdir -p "$OUT"
if [ -z "${BIN:-}" ]; then
  need_cargo; need_cmake
  cargo build --release --quiet --bin catraca
  BIN="$ROOT/target/release/catraca"
fi
PY="$(command -v python3)"
HELP="$ROOT/loadtests/tokia_scale.py"
MASTER="tokia-scale-master-key-0123456789abcdef"
DBURL="${DATABASE_URL%/*}/$DBNAME"
WORK="$(mktemp -d)"; PIDS=""; GW=""
cleanup() {
  kill $PIDS 2>/dev/null || true
  if [ "${KEEP:-0}" != 1 ] && [ "${SEED_ONLY:-0}" != 1 ]; then
    psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1 || true
    rm -f "$OUT/tokia_scale.key" "$OUT/tokia_scale.org"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/gw.yaml" <<EOF
listen: ["127.0.0.1:18280"]
metrics_listen: "127.0.0.1:19290"
admin_listen: "127.0.0.1:18289"
threads: 2
client:
  max_connections_per_ip: 100000
database: {spill_path: "$WORK/spill.jsonl"}
pricing: {fx_usd_brl: "5.0", default_markup: "1.0"}
providers:
  - {name: mock, base_url: "http://127.0.0.1:19280/v1", forward_headers: [x-mock-*]}
deployments:
  - {name: mock-gpt-4o-mini, provider: mock, model: gpt-4o-mini}
models:
  - {name: gpt-4o-mini, deployments: [mock-gpt-4o-mini], input_usd_per_1m: "0.15", output_usd_per_1m: "0.60"}
  - {name: gpt-4o, deployments: [mock-gpt-4o-mini], input_usd_per_1m: "2.50", output_usd_per_1m: "10.00"}
  - {name: claude-3-5-haiku, deployments: [mock-gpt-4o-mini], input_usd_per_1m: "0.80", output_usd_per_1m: "4.00"}
  - {name: llama-3.1-70b, deployments: [mock-gpt-4o-mini], input_usd_per_1m: "0.59", output_usd_per_1m: "0.79"}
  - {name: text-embedding-3-small, category: embedding, deployments: [mock-gpt-4o-mini], input_usd_per_1m: "0.02"}
EOF

start_gw() {
  RUST_LOG=warn DATABASE_URL="$DBURL" CATRACA_MASTER_KEY="$MASTER" "$BIN" serve --config "$WORK/gw.yaml" \
    2>>"$WORK/gw.log" & GW=$!; PIDS="$PIDS $GW"
  for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18280/openapi.json)" = 200 ] && return
    sleep 0.1
  done
  cat "$WORK/gw.log" >&2; die "the gateway did not start"
}
stop_gw() { kill "$GW"; wait "$GW" 2>/dev/null || true; }
op() { # METHOD PATH JSON → the answer's body (fails unless 2xx)
  curl -sf -X "$1" "http://127.0.0.1:18280$2" -H "authorization: Bearer $MASTER" \
    -H 'content-type: application/json' ${3:+-d "$3"} || die "operator API: $1 $2 failed"
}
field() { "$PY" -c "import json,sys; print(json.load(sys.stdin)$1)"; }

"$BIN" mock-upstream --listen 127.0.0.1:19280 --threads 1 2>"$WORK/mock.log" & PIDS="$PIDS $!"

if [ "${REUSE:-0}" != 1 ]; then
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1
  psql "$DATABASE_URL" -qc "CREATE DATABASE $DBNAME" >/dev/null
  "$BIN" migrate --database-url "$DBURL" >/dev/null 2>&1 || die "migrations failed"
  start_gw
  # the tenant through the operator API: a prepaid organization, its owner, ten keys, three of
  # them revoked (300, 200 and 100 days ago: their events stop there)
  ORG=$(op POST /admin/v1/organizations '{"name":"Scale","prepaid":true}' | field '["id"]')
  USR=$(op POST /admin/v1/users "{\"email\":\"scale@example.com\",\"name\":\"Scale\",\"organization_id\":\"$ORG\",\"role\":\"owner\"}" | field '["id"]')
  for i in $(seq 1 10); do
    op POST /admin/v1/keys "{\"organization_id\":\"$ORG\",\"user_id\":\"$USR\",\"prefix\":\"sk-tokia-\",\"name\":\"key $i\"}" >"$WORK/key$i.json"
  done
  for i in 8 9 10; do op POST "/admin/v1/keys/$(field '["id"]' <"$WORK/key$i.json")/revoke" >/dev/null; done
  stop_gw
  psql "$DBURL" -qc "UPDATE api_key SET created_at = now() - interval '366 days' WHERE organization_id = '$ORG';
    UPDATE api_key k SET revoked_at = now() - interval '100 days' * r.n
    FROM (SELECT api_key_id, row_number() OVER (ORDER BY serial_id DESC) AS n FROM api_key
          WHERE organization_id = '$ORG' AND status = 'revoked') r
    WHERE k.api_key_id = r.api_key_id" >/dev/null
  say "seeding $EVENTS usage events"
  t0=$(date +%s)
  psql "$DBURL" -q -v org="$ORG" -v events="$EVENTS" -f loadtests/tokia_scale_seed.sql >/dev/null
  psql "$DBURL" -qc "VACUUM ANALYZE" >/dev/null
  say "seeded in $(( $(date +%s) - t0 )) s"
  field '["key"]' <"$WORK/key1.json" >"$OUT/tokia_scale.key"
  echo "$ORG" >"$OUT/tokia_scale.org"
  psql "$DBURL" -c "SELECT (SELECT count(*) FROM usage_event) AS events,
      (SELECT count(*) FROM usage_event WHERE session_id IS NOT NULL) AS in_sessions,
      (SELECT count(DISTINCT session_id) FROM usage_event) AS sessions,
      (SELECT count(*) FROM ledger_entry) AS ledger_entries,
      (SELECT balance_brl_micros FROM organization WHERE organization_id = '$ORG') AS balance,
      (SELECT sum(amount_brl_micros) FROM ledger_entry) AS ledger_sum" | tee "$OUT/tokia_scale_seed.txt"
  if [ "${SEED_ONLY:-0}" = 1 ]; then say "seeded $DBNAME (org $ORG, key in $OUT/tokia_scale.key)"; exit 0; fi
fi
KEY="$(cat "$OUT/tokia_scale.key")"
start_gw
say "gateway pid $GW ($BIN)"

# the routes, sequentially; a first request of each warms the key cache and the plan cache
TODAY=$(date -u +%F); FROM=$(date -u -d '364 days ago' +%F)
ROUTES=("/v1/me/usage-summary" "/v1/me/usage-summary?days=365" "/v1/me/sessions"
  "/v1/me/sessions?days=90&limit=500" "/v1/usage/by-key" "/v1/usage/by-key?days=365")
echo '{"routes": {' >"$WORK/res.json"; sep=""
for r in "${ROUTES[@]}"; do
  "$PY" "$HELP" seq 127.0.0.1 18280 "$KEY" "$r" 3 >/dev/null || die "$r failed"
  line=$("$PY" "$HELP" seq 127.0.0.1 18280 "$KEY" "$r" "$N") || die "$r failed"
  say "$r: $line"
  printf '%s"%s": %s\n' "$sep" "$r" "$line" >>"$WORK/res.json"; sep=","
done
EXPORT="/v1/usage/export.csv?from=$FROM&to=$TODAY"
line=$("$PY" "$HELP" export 127.0.0.1 18280 "$KEY" "$EXPORT" "$GW") || die "export failed"
say "export: $line"
printf '}, "export_path": "%s", "export": %s,\n' "$EXPORT" "$line" >>"$WORK/res.json"

# chat: the same wrk load without and with a session id, alternating
cat >"$WORK/plain.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Olá, tudo bem? Responda em uma frase."}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
EOF
{ cat "$WORK/plain.lua"; echo 'wrk.headers["x-tokia-session-id"] = "sess-wrk-0123456789"'; } >"$WORK/session.lua"
wrk_rps() { # script → req/s (fails on any non-2xx)
  local o; o=$(wrk -t2 -c"$CONNS" -d"$DURATION" -s "$1" http://127.0.0.1:18280/v1/chat/completions)
  echo "$o" | grep -q 'Non-2xx' && { echo "$o" >&2; die "non-2xx answers under wrk"; }
  echo "$o" | awk '/Requests\/sec/{print $2}'
}
wrk_rps "$WORK/plain.lua" >/dev/null # warm-up, uncounted
PLAIN=""; SESS=""
for i in $(seq "$ROUNDS"); do
  p=$(wrk_rps "$WORK/plain.lua"); s=$(wrk_rps "$WORK/session.lua")
  say "chat round $i: without $p req/s, with session $s req/s"
  PLAIN="$PLAIN${PLAIN:+,}$p"; SESS="$SESS${SESS:+,}$s"
done
printf '"chat": {"plain": [%s], "session": [%s]}}\n' "$PLAIN" "$SESS" >>"$WORK/res.json"
cp "$WORK/res.json" "$OUT/tokia_scale.json"
"$PY" "$HELP" table "$OUT/tokia_scale.json" | tee "$OUT/tokia_scale.md"
