#!/usr/bin/env bash
# Live-event delay (MaxAI's /socket.io/): one gateway with its admin app on a scratch Postgres
# database, the mock upstream, and loadtests/live_delay.py (a python-socketio client): p50/p99
# from a request's end to its `usage` event on the socket, over N requests.
# Env: DATABASE_URL (required: a server to create the scratch database on), N (1000), C (client
# threads, 1), SOCKET (admin | gateway), TRANSPORT (websocket | polling), BIN (a catraca
# binary; default: build the release one), EXTRA_YAML (config lines added), HOLD (seconds: only
# start everything and wait, for trying a client by hand).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
[ -n "${DATABASE_URL:-}" ] || die "set DATABASE_URL (the scratch database is created there)"
if [ -z "${BIN:-}" ]; then
  need_cargo; need_cmake
  cargo build --release --quiet --bin catraca
  BIN="$ROOT/target/release/catraca"
fi
PY="$(need_python_sdk)"
WORK="$(mktemp -d)"; DBNAME="catraca_live_$$"; PIDS=""
cleanup() {
  kill $PIDS 2>/dev/null || true; wait 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql "$DATABASE_URL" -qc "CREATE DATABASE $DBNAME" >/dev/null
DBURL="${DATABASE_URL%/*}/$DBNAME"
cat >"$WORK/catraca.yaml" <<YAML
listen: ["127.0.0.1:18180"]
metrics_listen: "127.0.0.1:19190"
admin_listen: "127.0.0.1:18189"
threads: 2
${EXTRA_YAML:-}
database: {spill_path: "$WORK/spill.jsonl"}
providers:
  - {name: mock, base_url: "http://127.0.0.1:19110/v1"}
deployments:
  - {name: mock-gpt-4o-mini, provider: mock, model: gpt-4o-mini}
models:
  - {name: gpt-4o-mini, deployments: [mock-gpt-4o-mini], input_usd_per_1m: "0.15", output_usd_per_1m: "0.60"}
YAML
"$BIN" mock-upstream --listen 127.0.0.1:19110 --threads 1 2>"$WORK/mock.log" & PIDS="$PIDS $!"
(cd "$WORK" && RUST_LOG=warn DATABASE_URL="$DBURL" CATRACA_JWT_SECRET="live-delay-secret-live-delay-secret-0" \
  exec "$BIN" serve --config "$WORK/catraca.yaml" 2>"$WORK/gateway.log") & PIDS="$PIDS $!"
for _ in $(seq 150); do
  curl -sf http://127.0.0.1:18180/healthz >/dev/null && curl -sf http://127.0.0.1:18189/api/health >/dev/null && break
  sleep 0.1
done
curl -sf http://127.0.0.1:18189/api/health >/dev/null || { cat "$WORK/gateway.log"; die "gateway did not start"; }
[ -n "${HOLD:-}" ] && { say "holding: gateway 18180, admin 18189"; sleep "$HOLD"; exit 0; }
"$PY" loadtests/live_delay.py --gateway http://127.0.0.1:18180 --admin http://127.0.0.1:18189 \
  -n "${N:-1000}" -c "${C:-1}" --socket "${SOCKET:-admin}" --transport "${TRANSPORT:-websocket}" \
  || { tail -20 "$WORK/gateway.log"; exit 1; }
