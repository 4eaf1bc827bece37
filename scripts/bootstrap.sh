#!/usr/bin/env bash
# Prepare everything the demo and the test suite need, on a fresh Debian machine with python3.
# Idempotent and quiet when there is nothing to do.
#   scripts/bootstrap.sh            virtualenv + obs with its test extra
#   scripts/bootstrap.sh --system   also Debian's prometheus (promtool), wrk, valgrind and the npm
#                                   tools for tests
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
say() { printf '[bootstrap] %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    say "need root to install Debian packages: $*; run: sudo apt-get install -y $*"
    return 1
  fi
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    apt_install python3-venv
    "$PYTHON" -m venv "$VENV"
  fi
fi

# The demo needs only its own small extra; the tests need everything. A venv with the test
# extra satisfies the demo too.
extra=test
[ "${1:-}" = "--demo" ] && extra=demo
stamp="$VENV/.obs-installed-$extra"
if [ ! -f "$VENV/.obs-installed-test" ] || [ pyproject.toml -nt "$VENV/.obs-installed-test" ]; then
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "installing obs and its $extra extra into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[$extra]"
    touch "$stamp"
  fi
fi

if [ "${1:-}" = "--system" ]; then
  if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    say "installing Debian's prometheus package (prometheus, promtool)"
    apt_install prometheus
    # The package starts a system service on port 9090; tests run their own instances.
    (systemctl stop prometheus 2>/dev/null || service prometheus stop 2>/dev/null || pkill -x prometheus) >/dev/null 2>&1 || true
  fi
  if ! command -v wrk >/dev/null 2>&1; then
    say "installing Debian's wrk (the load generator of the no-loss tests)"
    apt_install wrk
  fi
  if ! command -v valgrind >/dev/null 2>&1; then
    say "installing Debian's valgrind (instruction counts: bench/instructions.py)"
    apt_install valgrind
  fi
  # An unprivileged user for the test of `obs profile` on another user's process.
  if [ "$(id -u)" = 0 ] && ! id obsnobody >/dev/null 2>&1; then
    say "creating the unprivileged user obsnobody (profiling permission tests)"
    useradd --system --no-create-home --shell /usr/sbin/nologin obsnobody
  fi
  if ! command -v npm >/dev/null 2>&1; then
    say "installing Debian's npm (for the schema checks in the tests)"
    apt_install nodejs npm
  fi
  if [ ! -d tools/node_modules ] || [ tools/package.json -nt tools/node_modules ]; then
    say "installing the npm test tools into tools/node_modules"
    npm install --prefix tools --no-audit --no-fund --loglevel=error >/dev/null
    touch tools/node_modules
  fi
fi
