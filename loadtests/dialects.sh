#!/usr/bin/env bash
# Issue 16's measurement: chat through catraca to each provider kind against the OpenAI
# pass-through, in ONE run (same box, same moment): requests/s and p99 with wrk, whole answers
# and streams, and gateway CPU per request (from /proc, user+system ticks over the run).
# The mock answers every dialect (`catraca mock-upstream`); its own cost differs per dialect
# (Bedrock's checks a SigV4 signature), so the ratio is an upper bound of catraca's share.
# Env: DURATION (6s), CONNS (32), THREADS (gateway threads, 1), SKIP_BUILD=1.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
need_cargo; need_cmake
command -v wrk >/dev/null || apt_install wrk
DURATION="${DURATION:-6s}"; CONNS="${CONNS:-32}"; THREADS="${THREADS:-1}"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin catraca
BIN="$ROOT/target/release/catraca"
WORK="$(mktemp -d)"; PIDS=""
cleanup() { kill $PIDS 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
KEY="sk-bench-dialects-0123456789"
SHA=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
M=127.0.0.1:19300
"$BIN" mock-upstream --listen $M --threads 1 2>"$WORK/mock.log" & PIDS="$PIDS $!"
cat >"$WORK/catraca.yaml" <<YAML
listen: ["127.0.0.1:18380"]
metrics_listen: "127.0.0.1:19390"
threads: $THREADS
usage: {jsonl_path: "$WORK/usage.jsonl"}
keys:
  - {name: bench, sha256: "$SHA"}
providers:
  - {name: openai, base_url: "http://$M/v1"}
  - {name: azure, kind: azure, api_version: "2024-10-21", base_url: "http://$M", api_key_env: BENCH_KEY}
  - {name: anthropic, kind: anthropic, base_url: "http://$M", api_key_env: BENCH_KEY}
  - {name: gemini, kind: gemini, base_url: "http://$M/v1beta", api_key_env: BENCH_KEY}
  - {name: bedrock, kind: bedrock, region: us-east-1, base_url: "http://$M"}
deployments:
  - {name: d-openai, provider: openai, model: up}
  - {name: d-azure, provider: azure, model: up}
  - {name: d-anthropic, provider: anthropic, model: up}
  - {name: d-gemini, provider: gemini, model: up}
  - {name: d-bedrock, provider: bedrock, model: "anthropic.claude-3-haiku-20240307-v1:0"}
models:
  - {name: openai, input_usd_per_1m: "1", output_usd_per_1m: "2", deployments: [d-openai]}
  - {name: azure, input_usd_per_1m: "1", output_usd_per_1m: "2", deployments: [d-azure]}
  - {name: anthropic, input_usd_per_1m: "1", output_usd_per_1m: "2", deployments: [d-anthropic]}
  - {name: gemini, input_usd_per_1m: "1", output_usd_per_1m: "2", deployments: [d-gemini]}
  - {name: bedrock, input_usd_per_1m: "1", output_usd_per_1m: "2", deployments: [d-bedrock]}
YAML
BENCH_KEY=bench-upstream-key AWS_ACCESS_KEY_ID=AKIDMOCKCATRACA AWS_SECRET_ACCESS_KEY='catraca/mock+secret/KEY' \
  "$BIN" serve --config "$WORK/catraca.yaml" 2>"$WORK/gw.log" & GW=$!; PIDS="$PIDS $GW"
G=http://127.0.0.1:18380
for _ in $(seq 100); do curl -fs $G/healthz >/dev/null && break; sleep 0.1; done
TICK=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$GW/stat; }
MSG='[{"role":"user","content":"Olá, tudo bem? Responda em uma frase."}]'
declare -A RPS P99 CPU
for stream in false true; do
  for k in openai azure anthropic gemini bedrock; do
    body="{\"model\":\"$k\",\"stream\":$stream,\"messages\":$MSG}"
    cat >"$WORK/$k.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.path = "/v1/chat/completions"
LUA
    curl -fsS -o /dev/null -H "authorization: Bearer $KEY" -H 'content-type: application/json' -d "$body" $G/v1/chat/completions \
      || { tail -5 "$WORK/gw.log"; die "$k: no 200"; }
    wrk -t1 -c"$CONNS" -d1s -s "$WORK/$k.lua" $G >/dev/null
    c0=$(cpu)
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/$k.lua" $G)
    c1=$(cpu)
    echo "$out" | grep -q "Non-2xx" && { echo "$out"; die "$k: non-2xx answers"; }
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    id="$k/$stream"
    RPS[$id]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    P99[$id]=$(echo "$out" | awk '$1=="99%" {print $2}')
    CPU[$id]=$(awk -v t=$((c1 - c0)) -v n="$n" -v hz="$TICK" 'BEGIN {printf "%.0f", t / hz * 1e6 / n}')
  done
done
printf '%-10s %-6s %10s %7s %10s %12s\n' kind stream req/s ratio p99 "cpu µs/req"
for stream in false true; do
  for k in openai azure anthropic gemini bedrock; do
    id="$k/$stream"
    ratio=$(awk -v a="${RPS[$id]}" -v b="${RPS[openai/$stream]}" 'BEGIN {printf "%.2f", a / b}')
    printf '%-10s %-6s %10s %7s %10s %12s\n' "$k" "$stream" "${RPS[$id]}" "$ratio" "${P99[$id]}" "${CPU[$id]}"
  done
done
