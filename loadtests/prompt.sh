#!/usr/bin/env bash
# Request cost against prompt size: catraca (bench config, 1 thread) under wrk with prompts of
# SIZES bytes, once with a key that needs no token count (sk-bench) and once with one under a
# tokens-per-minute limit (sk-bench-tpm: every prompt is estimated with the model's
# tokenizer). Gateway CPU µs per request and req/s per step into $OUT/prompt.md, prompt.json
# and prompt-cost.png. Any non-2xx fails the run.
# Env: SIZES ("100 1000 10000 100000"), DURATION (5s), CONNS (64), OUT.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
need_cargo; need_cmake
command -v wrk >/dev/null || apt_install wrk
OUT="${OUT:-$ROOT/loadtests/results}"; mkdir -p "$OUT"
DURATION="${DURATION:-5s}"; CONNS="${CONNS:-64}"
cargo build --release --quiet --bin catraca
BIN="$ROOT/target/release/catraca"
WORK="$(mktemp -d)"; PIDS=""
trap 'kill $PIDS 2>/dev/null || true; rm -rf "$WORK"' EXIT
sed "s/threads: 2/threads: 1/" loadtests/catraca-bench.yaml >"$WORK/catraca.yaml"
"$BIN" mock-upstream --listen 127.0.0.1:19100 --threads 1 2>"$WORK/mock.log" & PIDS="$PIDS $!"
RUST_LOG=warn "$BIN" serve --config "$WORK/catraca.yaml" 2>"$WORK/catraca.log" & G=$!; PIDS="$PIDS $G"
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18080/healthz && break; sleep 0.1; done
: >"$WORK/rows.txt"
for size in ${SIZES:-100 1000 10000 100000}; do
  for key in sk-bench sk-bench-tpm; do
    python3 - "$size" "$key" >"$WORK/p.lua" <<'PYEOF'
import json, sys
words = "Olá, tudo bem? Explique em uma frase o que é uma catraca, por favor. "
text = (words * (int(sys.argv[1]) // len(words) + 1))[: int(sys.argv[1])]
body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]})
print("wrk.method = 'POST'")
print("wrk.body = " + json.dumps(body))
print("wrk.headers['Content-Type'] = 'application/json'")
print(f"wrk.headers['Authorization'] = 'Bearer {sys.argv[2]}'")
PYEOF
    wrk -t2 -c"$CONNS" -d2s -s "$WORK/p.lua" http://127.0.0.1:18080/v1/chat/completions >/dev/null
    C0=$(awk '{print $14 + $15}' "/proc/$G/stat")
    R=$(wrk -t2 -c"$CONNS" -d"$DURATION" -s "$WORK/p.lua" http://127.0.0.1:18080/v1/chat/completions)
    C1=$(awk '{print $14 + $15}' "/proc/$G/stat")
    REQS=$(echo "$R" | awk '/requests in/{print $1}'); RPS=$(echo "$R" | awk '/Requests\/sec/{print $2}')
    ERRS=$(echo "$R" | awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(",","");n+=$4+$6+$8+$10} END{print n+0}')
    echo "$size $key $RPS $REQS $((C1 - C0)) $ERRS" >>"$WORK/rows.txt"
    say "prompt $size bytes, $key: $RPS req/s, errors $ERRS"
  done
done
PY=python3; [ -x "$ROOT/target/pyenv/bin/python" ] && PY="$ROOT/target/pyenv/bin/python"
"$PY" - "$WORK/rows.txt" "$OUT" <<'PYEOF'
import json, sys
rows = []
for l in open(sys.argv[1]):
    size, key, rps, reqs, ticks, errs = l.split()
    rows.append(dict(size=int(size), key=key, rps=float(rps), cpu_us=int(ticks) * 10000 / max(int(reqs), 1), errors=int(errs)))
md = ["| prompt bytes | key | req/s | gateway CPU µs/request | errors |", "|---|---|---|---|---|"]
md += [f"| {r['size']} | {r['key']} | {r['rps']:.0f} | {r['cpu_us']:.1f} | {r['errors']} |" for r in rows]
open(f"{sys.argv[2]}/prompt.md", "w").write("\n".join(md) + "\n")
json.dump(rows, open(f"{sys.argv[2]}/prompt.json", "w"), indent=2)
print("\n".join(md))
try:
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (("sk-bench", "no token count"), ("sk-bench-tpm", "prompt estimated (TPM limit)")):
        pts = [r for r in rows if r["key"] == key]
        ax.plot([r["size"] for r in pts], [r["cpu_us"] for r in pts], marker="o", label=label)
    ax.set_xscale("log"); ax.set_yscale("log"); ax.grid(alpha=0.3); ax.legend()
    ax.set_xlabel("prompt, bytes"); ax.set_ylabel("gateway CPU per request, µs"); ax.set_title("request cost against prompt size (1 thread)")
    fig.savefig(f"{sys.argv[2]}/prompt-cost.png", dpi=110, bbox_inches="tight")
except ImportError:
    print("matplotlib missing: no plot")
sys.exit(1 if any(r["errors"] for r in rows) else 0)
PYEOF
