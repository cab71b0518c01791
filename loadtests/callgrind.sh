#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: the same binary and inputs give
# the same count whatever else the shared box is doing, so two builds compare exactly.
# Starts the mock and the gateway (bare Pingora or catraca on the bench config, one thread)
# under callgrind, sends WARM requests, zeroes the counters, sends N sequential keep-alive chat
# requests (loadtests/seq.py), dumps, and prints instructions per request, the top functions
# (self cost) and the per-feature breakdown (inclusive cost of each phase's function, per
# request). Writes $OUT/callgrind.<target>.out (open it with callgrind_annotate or kcachegrind).
# Usage: loadtests/callgrind.sh [bare|catraca] ; env N (1000), WARM (200), CATRACA_BIN (another
# catraca binary to count instead of this build), KEY (sk-bench; the
# bench config also has sk-bench-limited and sk-bench-tpm), OUT (loadtests/results).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
need_cargo; need_cmake
command -v valgrind >/dev/null || apt_install valgrind
TARGET="${1:-catraca}"; N="${N:-1000}"; WARM="${WARM:-200}"; KEY="${KEY:-sk-bench}"
OUT="${OUT:-$ROOT/loadtests/results}"; mkdir -p "$OUT"
cargo build --release --quiet --bin catraca --example bare_pingora
BIN="${CATRACA_BIN:-$ROOT/target/release/catraca}"; BARE="$ROOT/target/release/examples/bare_pingora"
WORK="$(mktemp -d)"; PIDS=""
trap 'kill $PIDS 2>/dev/null; rm -rf "$WORK"' EXIT
"$BIN" mock-upstream --listen 127.0.0.1:19100 --threads 1 2>"$WORK/mock.log" & PIDS="$PIDS $!"
sed "s/threads: 2/threads: 1/" loadtests/catraca-bench.yaml >"$WORK/catraca.yaml"
CG=(valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" --dump-instr=no)
case $TARGET in
  bare) "${CG[@]}" "$BARE" 127.0.0.1:18090 127.0.0.1:19100 1 2>"$WORK/gw.log" & PORT=18090 ;;
  catraca) RUST_LOG=warn "${CG[@]}" "$BIN" serve --config "$WORK/catraca.yaml" 2>"$WORK/gw.log" & PORT=18080 ;;
  *) die "target: bare or catraca" ;;
esac
GW=$!; PIDS="$PIDS $GW"
for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done
python3 loadtests/seq.py 127.0.0.1 "$PORT" "$WARM" "$KEY" || die "warm-up failed (see $WORK/gw.log)"
callgrind_control -z "$GW" >/dev/null 2>&1
python3 loadtests/seq.py 127.0.0.1 "$PORT" "$N" "$KEY" || die "measured requests failed"
callgrind_control -d "$GW" >/dev/null 2>&1
sleep 1
DUMP=$(ls -t "$WORK"/cg.out.* 2>/dev/null | head -1)
[ -n "$DUMP" ] || die "no callgrind dump"
cp "$DUMP" "$OUT/callgrind.$TARGET.out"
kill "$GW" 2>/dev/null; wait "$GW" 2>/dev/null
python3 loadtests/callgrind_report.py "$OUT/callgrind.$TARGET.out" "$N" "$TARGET"
