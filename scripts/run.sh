#!/usr/bin/env bash
# Run the gateway on its shipped default config (conf/catraca.yaml) with the mock upstream it
# routes to (127.0.0.1:9100). Ctrl-C stops both. Try it:
#   curl -s localhost:8080/v1/chat/completions -H 'authorization: Bearer sk-catraca-demo' \
#        -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"oi"}]}'
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
need_cargo
need_cmake
say "building (release)"
cargo build --release --quiet
BIN="$ROOT/target/release/catraca"
"$BIN" mock-upstream --listen 127.0.0.1:9100 &
MOCK=$!
trap 'kill $MOCK 2>/dev/null || true' EXIT
say "mock upstream on 127.0.0.1:9100; gateway on 127.0.0.1:8080 (metrics 127.0.0.1:9090); demo key sk-catraca-demo"
"$BIN" serve --config "${CATRACA_CONFIG:-conf/catraca.yaml}"
