#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (real processes over
# loopback, a real PostgreSQL, the OpenAI Python SDK). CI runs exactly this (.ci/run).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
need_cargo
need_cmake
CATRACA_PYTHON="$(need_python_sdk)"
export CATRACA_PYTHON
CATRACA_NODE="$(need_node_sdk)"
export CATRACA_NODE
need_postgres   # tests create their own databases on it (sqlx::test)
need_redis      # limiter tests use keys of their own on it
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
say "cargo deny (licenses, duplicate versions, sources; advisories need GitHub: see deny.toml)"
need_cargo_deny
cargo deny --log-level error check licenses bans sources
say "cargo test"
cargo test --quiet 2>&1
