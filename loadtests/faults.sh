#!/usr/bin/env bash
# The hostile-client and broken-provider cases of issue 11 against one catraca build, with
# figures: one line per case. Run it on two builds to compare them:
#   loadtests/faults.sh                                   # target/release/catraca
#   BIN=/path/to/old/catraca MOCK_BIN=target/release/catraca loadtests/faults.sh
# MOCK_BIN serves the provider side (it needs x-mock-usage and x-mock-endless-event).
# Ports 18480-18492 on loopback. Needs curl and python3.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
if [ -z "${BIN:-}" ]; then
  need_cargo; need_cmake
  cargo build --release --quiet
  BIN="$ROOT/target/release/catraca"
fi
MOCK_BIN="${MOCK_BIN:-$BIN}"
WORK="$(mktemp -d)"
KEY=sk-faults-key
SHA=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
"$MOCK_BIN" mock-upstream --listen 127.0.0.1:18481 2>"$WORK/mock.log" &
MOCK=$!
PIDS="$MOCK"
trap 'kill $PIDS 2>/dev/null || true; rm -rf "$WORK"' EXIT

config() { # listen-port metrics-port grace
  local fwd=", forward_headers: [x-mock-*]"
  cat >"$WORK/probe.yaml" <<EOF
providers: [{name: p, base_url: "http://127.0.0.1:18481/v1"$fwd}]
deployments: [{name: d, provider: p, model: up}]
models: [{name: m, deployments: [d]}]
EOF
  "$BIN" check-config "$WORK/probe.yaml" >/dev/null 2>&1 || fwd=""
  cat <<EOF
listen: ["127.0.0.1:$1"]
metrics_listen: "127.0.0.1:$2"
grace_period_secs: $3
usage: {jsonl_path: "$WORK/usage-$1.jsonl"}
failover: {max_attempts: 2, failures_to_trip: 3, cooldown_ms: 30000}
providers:
  - {name: a, base_url: "http://127.0.0.1:18481/v1", read_timeout_ms: 5000$fwd}
  - {name: b, base_url: "http://127.0.0.1:18481/v1", read_timeout_ms: 5000$fwd}
deployments:
  - {name: da, provider: a, model: up, priority: 0}
  - {name: db, provider: b, model: up, priority: 1}
models:
  - {name: chat-model, input_usd_per_1m: "1", output_usd_per_1m: "2", deployments: [da, db]}
keys:
  - {name: k, sha256: "$SHA"}
EOF
}
start() { # port mport grace → pid in $GW
  config "$1" "$2" "$3" >"$WORK/gw-$1.yaml"
  RUST_LOG=warn "$BIN" serve --config "$WORK/gw-$1.yaml" 2>"$WORK/gw-$1.log" &
  GW=$!; PIDS="$PIDS $GW"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && break; sleep 0.1; done
}
chat() { # port body [curl args...]
  local port=$1 body=$2; shift 2
  curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" \
    -H "authorization: Bearer $KEY" -H 'content-type: application/json' "$@" -d "$body"
}
hwm() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
line() { printf '%-34s %s\n' "$1" "$2"; }

start 18480 18490 30
P=18480
line "build" "$("$BIN" --version 2>/dev/null || echo "$BIN")"

# 1. an SSE event that never ends (40 MB)
H0=$(hwm $GW); C0=$(ticks $GW); T0=$(date +%s.%N)
BYTES=$(curl -s "http://127.0.0.1:$P/v1/chat/completions" -H "authorization: Bearer $KEY" \
  -H 'content-type: application/json' -H 'x-mock-endless-event: 40000000' \
  -d '{"model":"chat-model","stream":true,"messages":[]}' | wc -c)
T1=$(date +%s.%N)
line "endless 40 MB SSE event" "client got $BYTES bytes in $(awk "BEGIN{printf \"%.2f\", $T1 - $T0}") s; gateway +$(( ($(hwm $GW) - H0) / 1024 )) MiB peak RSS, $(( $(ticks $GW) - C0 )) CPU ticks (1/100 s)"

# 2. absurd usage reported by the provider
chat $P '{"model":"chat-model","messages":[{"role":"user","content":"oi"}]}' \
  -H 'x-mock-usage: {"prompt_tokens":9223372036854775807,"completion_tokens":5}' >/dev/null
sleep 0.3
line "usage 2^63-1 tokens" "$(tail -1 "$WORK/usage-$P.jsonl" | python3 -c 'import json,sys; e=json.load(sys.stdin); print("stored prompt_tokens", e["prompt_tokens"], "usage_reported", e["usage_reported"], "billed BRL micros", e.get("cost_billed_brl_micros"))')"

# 3. JSON nested 130 deep (past serde_json's 128 limit, which a first look does not apply), 5 times
DEEP=$(python3 -c 'print("{\"model\":\"chat-model\",\"stream\":true,\"stream_options\":{\"include_usage\":false},\"messages\":[],\"x\":" + "["*130 + "]"*130 + "}")')
CODES=""
for _ in 1 2 3 4 5; do CODES="$CODES $(chat $P "$DEEP")"; done
OPEN=$(curl -s "http://127.0.0.1:18490/metrics" | grep -c '^catraca_circuit_open_total' || true)
line "JSON nested 130 deep x5" "statuses:$CODES; circuits opened: $OPEN; then a normal request: $(chat $P '{"model":"chat-model","messages":[]}')"

# 4. a client that leaves while the provider thinks
curl -s -o /dev/null --max-time 0.2 "http://127.0.0.1:$P/v1/chat/completions" -H "authorization: Bearer $KEY" \
  -H 'content-type: application/json' -H 'x-mock-latency-ms: 1000' -d '{"model":"chat-model","messages":[]}' || true
sleep 1.5
line "client leaves after 0.2 s" "$(tail -1 "$WORK/usage-$P.jsonl" | python3 -c 'import json,sys; e=json.load(sys.stdin); print("attempts", e["attempts"], "deployment", e["deployment"], "status", e["status"])')"

# 5. headers a provider must not see
chat $P '{"model":"chat-model","messages":[]}' -H 'cookie: s=1' -H 'OpenAI-Project: proj_x' -H 'OpenAI-Organization: org_x' >/dev/null
line "cookie / OpenAI-Project sent" "provider saw: $(curl -s http://127.0.0.1:18481/mock/stats | python3 -c 'import json,sys; h=json.load(sys.stdin)["last_headers"]; print(sorted(k for k in h if k in ("cookie","openai-project","openai-organization")) or "none of them")')"

# 6. slowloris: a head trickled at one byte per second (20 s cap)
line "head at 1 byte/s" "$(python3 - "$P" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.5)
t0 = time.time()
head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
for b in head:
    try:
        s.send(bytes([b]))
        if s.recv(1) == b"":
            break
    except socket.timeout:
        pass
    except OSError:
        break
    if time.time() - t0 > 20:
        print("still open after 20 s"); sys.exit()
print(f"closed after {time.time() - t0:.1f} s")
EOF
)"

# 7. the config file emptied under a running gateway
cp "$WORK/gw-$P.yaml" "$WORK/keep.yaml"; : >"$WORK/gw-$P.yaml"; sleep 1.5
line "config file truncated" "next request: $(chat $P '{"model":"chat-model","messages":[]}')"
cp "$WORK/keep.yaml" "$WORK/gw-$P.yaml"; sleep 1.5

# 8. SIGTERM on an idle gateway with a 30 s grace period
T0=$(date +%s.%N); kill -TERM $GW
for _ in $(seq 400); do kill -0 $GW 2>/dev/null || break; sleep 0.1; done
line "SIGTERM, idle, grace 30 s" "exited after $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $T0}") s"
