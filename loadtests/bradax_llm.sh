#!/usr/bin/env bash
# bradax's LLM routes against the OpenAI route through the same catraca (issue 15 item 10),
# release build, Postgres key store, the mock upstream:
# - requests/s with wrk, one target after the other (ROUNDS times alternating): chat with a
#   plain key (`/v1/chat/completions`, sk-), chat with a bradax access token, `llm/invoke` with
#   the token; the ratio invoke / chat;
# - time to first token of streams (closed loop, CONC at once, N each, first content delta
#   parsed from the body): `/v1/chat/completions` stream with the plain key vs
#   `/api/v1/llm/stream` with the token, p50/p99 and the added p99.
# Needs DATABASE_URL (source /tmp/env.sh). Env: ROUNDS (2), DURATION (8s), CONNS (32),
# THREADS (gateway threads, 2), N (2000), CONC (16), SKIP_BUILD=1 (use target/release as built).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
need_cargo; need_cmake
command -v wrk >/dev/null || apt_install wrk
: "${DATABASE_URL:?set DATABASE_URL}"
ROUNDS="${ROUNDS:-2}"; DURATION="${DURATION:-8s}"; CONNS="${CONNS:-32}"; THREADS="${THREADS:-2}"
N="${N:-2000}"; CONC="${CONC:-16}"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin catraca
BIN="$ROOT/target/release/catraca"
WORK="$(mktemp -d)"; PIDS=""; DBNAME="bench_bradax_$$"
cleanup() {
  kill $PIDS 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql "$DATABASE_URL" -qc "CREATE DATABASE $DBNAME" >/dev/null
DB="${DATABASE_URL%/*}/$DBNAME"
MASTER="bench-master-key-0123456789"
"$BIN" mock-upstream --listen 127.0.0.1:19200 --threads 1 2>"$WORK/mock.log" & PIDS="$PIDS $!"
cat >"$WORK/catraca.yaml" <<YAML
listen: ["127.0.0.1:18280"]
metrics_listen: "127.0.0.1:19290"
admin_listen: "127.0.0.1:18281"
threads: $THREADS
usage: {jsonl_path: "$WORK/usage.jsonl"}
providers:
  - {name: mock, base_url: "http://127.0.0.1:19200/v1", forward_headers: [x-mock-*]}
deployments:
  - {name: mock-gpt-4o-mini, provider: mock, model: gpt-4o-mini}
models:
  - {name: gpt-4o-mini, deployments: [mock-gpt-4o-mini], input_usd_per_1m: "0.15", output_usd_per_1m: "0.60"}
YAML
DATABASE_URL="$DB" CATRACA_MASTER_KEY="$MASTER" CATRACA_JWT_SECRET="bench-jwt-secret-bench-jwt-secret-0123" \
  "$BIN" serve --config "$WORK/catraca.yaml" 2>"$WORK/gw.log" & PIDS="$PIDS $!"
for _ in $(seq 100); do curl -fs http://127.0.0.1:18280/healthz >/dev/null && break; sleep 0.1; done
G=http://127.0.0.1:18280
op() { curl -fsS -H "authorization: Bearer $MASTER" -H 'content-type: application/json' "$@"; }
ORG=$(op "$G/admin/v1/organizations" -d '{"name":"bench","slug":"bench","kind":"project","tier":"full"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
BXKEY=$(op "$G/admin/v1/keys" -d "{\"organization_id\":\"$ORG\",\"prefix\":\"bx_live_\",\"scopes\":[\"invoke_llm\"]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
SKKEY=$(op "$G/admin/v1/keys" -d "{\"organization_id\":\"$ORG\",\"prefix\":\"sk-\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
TOKEN=$(curl -fsS -H 'content-type: application/json' "$G/api/v1/auth/token" -d "{\"project_id\":\"bench\",\"api_key\":\"$BXKEY\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
MSG='[{"role":"user","content":"Olá, tudo bem? Responda em uma frase."}]'
lua() { # path, bearer, body
  cat >"$WORK/$1.lua" <<LUA
wrk.method = "POST"
wrk.body = '$4'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $3"
wrk.path = "$2"
LUA
}
lua chat_key /v1/chat/completions "$SKKEY" "{\"model\":\"gpt-4o-mini\",\"messages\":$MSG}"
lua chat_token /v1/chat/completions "$TOKEN" "{\"model\":\"gpt-4o-mini\",\"messages\":$MSG}"
lua invoke /api/v1/llm/invoke "$TOKEN" "{\"model\":\"gpt-4o-mini\",\"messages\":$MSG,\"parameters\":{\"temperature\":0.7}}"
for t in chat_key chat_token invoke; do # warm up, and check each answers 200
  curl -fsS -o /dev/null -H "authorization: Bearer $([ $t = chat_key ] && echo "$SKKEY" || echo "$TOKEN")" \
    -H 'content-type: application/json' -d "{\"model\":\"gpt-4o-mini\",\"messages\":$MSG}" \
    "$G$([ $t = invoke ] && echo /api/v1/llm/invoke || echo /v1/chat/completions)"
  wrk -t2 -c"$CONNS" -d2s -s "$WORK/$t.lua" "$G" >/dev/null
done
declare -A RPS
for r in $(seq "$ROUNDS"); do
  for t in chat_key chat_token invoke; do
    out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -s "$WORK/$t.lua" "$G")
    if echo "$out" | grep -q "Non-2xx"; then echo "$out"; die "$t: non-2xx answers"; fi
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    RPS[$t]="${RPS[$t]:-} $rps"
    echo "round $r $t: $rps req/s"
  done
done
python3 - "${RPS[chat_key]}" "${RPS[chat_token]}" "${RPS[invoke]}" <<'PY'
import statistics, sys
a, b, c = ([float(x) for x in s.split()] for s in sys.argv[1:4])
ma, mb, mc = statistics.median(a), statistics.median(b), statistics.median(c)
print(f"median req/s: chat+key {ma:.0f}, chat+token {mb:.0f}, llm/invoke+token {mc:.0f}")
print(f"ratio llm/invoke / chat+key = {mc/ma:.3f}; chat+token / chat+key = {mb/ma:.3f}")
PY
python3 - "$G" "$SKKEY" "$TOKEN" "$N" "$CONC" <<'PY'
import asyncio, json, sys, time
base, key, token, n, conc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
host, port = base.split("//")[1].split(":")
MSG = [{"role": "user", "content": "Olá, tudo bem? Responda em uma frase."}]

async def one(path, bearer, body):
    r, w = await asyncio.open_connection(host, int(port))
    b = json.dumps(body).encode()
    t0 = time.perf_counter()
    w.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\nx-mock-chunks: 20\r\n"
            f"Connection: close\r\n\r\n".encode() + b)
    await w.drain()
    buf = b""
    ttft = None
    while True:
        chunk = await r.read(65536)
        if not chunk:
            break
        buf += chunk
        if ttft is None and (b'"content":"' in buf or b'"delta":"' in buf.replace(b'"delta":""', b"")):
            ttft = time.perf_counter() - t0
    w.close()
    assert b" 200 " in buf.split(b"\r\n", 1)[0], buf[:200]
    return ttft

async def run(path, bearer, body):
    lat = []
    sem = asyncio.Semaphore(conc)
    async def go():
        async with sem:
            lat.append(await one(path, bearer, body))
    await asyncio.gather(*(go() for _ in range(n)))
    lat = sorted(x * 1000 for x in lat if x is not None)
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1], len(lat)

async def main():
    chat = {"model": "gpt-4o-mini", "messages": MSG, "stream": True}
    bx = {"model": "gpt-4o-mini", "messages": MSG}
    for _ in range(2):  # warm
        await run("/v1/chat/completions", key, chat)
    a = await run("/v1/chat/completions", key, chat)
    b = await run("/api/v1/llm/stream", token, bx)
    print(f"TTFT chat stream+key:   p50 {a[0]:.2f} ms  p99 {a[1]:.2f} ms  (n={a[2]}, {conc} at once)")
    print(f"TTFT llm/stream+token:  p50 {b[0]:.2f} ms  p99 {b[1]:.2f} ms  (n={b[2]})")
    print(f"added p99 TTFT: {b[1]-a[1]:+.2f} ms")

asyncio.run(main())
PY
