#!/usr/bin/env bash
# bradax measurements (issue 15 items 11 and 12), release build, real Postgres and the mock:
# - vector query p50/p99 through POST /api/v1/vectors/{c}/query at 10k and 100k documents of
#   1536 dimensions (exact cosine in Rust over the in-memory copy; the first query loads it);
# - graph overhead per node besides model time (chains of template and llm nodes).
# Needs DATABASE_URL (source /tmp/env.sh or your own). Usage: scripts/bench_bradax.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CATRACA_BENCH_DOCS="${CATRACA_BENCH_DOCS:-10000,100000}"
export CATRACA_BENCH_QUERIES="${CATRACA_BENCH_QUERIES:-200}"
cargo nextest run --release --test integration --run-ignored only --no-capture \
  -E 'test(=bradax_vectors::measure_query_latency) | test(=bradax_graphs::measure_node_overhead)' \
  2>&1 | grep -E '^(vectors|graph|per) '
