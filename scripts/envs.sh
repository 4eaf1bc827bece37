#!/usr/bin/env bash
# The extra environments of the conformance suite: the newest framework and server releases on
# Python 3.12 and 3.13 (3.11's is .venv itself), and the oldest supported set on 3.11.
#   scripts/envs.sh                  build what is missing or older than its inputs (quiet then)
#   scripts/envs.sh --list           print the environments' names, one a line
#   scripts/envs.sh --refresh-newest write the versions pip resolves today to constraints/newest.txt
# Each environment is .envs/<name>, rebuilt only when pyproject.toml or its constraints file is
# newer than its stamp, as scripts/bootstrap.sh does for .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

PYENV_ROOT=${PYENV_ROOT:-/root/.pyenv}
# name  python  constraints
ENVS="py3.12-newest $PYENV_ROOT/versions/3.12.1/bin/python3 constraints/newest.txt
py3.13-newest $PYENV_ROOT/versions/3.13.0/bin/python3 constraints/newest.txt
py3.11-oldest python3.11 constraints/oldest.txt"
PACKAGES="structlog prometheus-client fastapi starlette litestar django flask werkzeug uvicorn httptools hypercorn gunicorn uvicorn-worker"
say() { printf '[envs] %s\n' "$*" >&2; }
# pip, quiet, keeping its errors but not its notes about unreachable index locations.
quiet_pip() {
  local venv=$1
  shift
  "$venv/bin/python" -m pip -q "$@" 2> >(grep -v '^WARNING: Location' >&2)
}

if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "$ENVS" | cut -d' ' -f1
  exit 0
fi

if [ "${1:-}" = "--refresh-newest" ]; then
  header=$(grep '^#' constraints/newest.txt)
  tmp=$(mktemp -d)
  python3 -m venv "$tmp/venv"
  quiet_pip "$tmp/venv" install ".[conformance]"
  { printf '%s\n' "$header"
    for package in $PACKAGES; do
      "$tmp/venv/bin/python" -m pip show "$package" | awk -v p="$package" '/^Version:/ {print p "==" $2}'
    done; } > constraints/newest.txt
  rm -rf "$tmp"
  say "constraints/newest.txt refreshed"
  exit 0
fi

printf '%s\n' "$ENVS" | while read -r name python constraints; do
  venv=.envs/$name
  stamp=$venv/.obs-installed
  if [ -f "$stamp" ] && [ ! pyproject.toml -nt "$stamp" ] && [ ! "$constraints" -nt "$stamp" ]; then
    continue
  fi
  if ! command -v "$python" >/dev/null 2>&1; then
    say "no $python for $name: install that Python (pyenv install) or edit ENVS in $0"
    exit 1
  fi
  say "building $venv ($("$python" --version 2>&1), $constraints)"
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    quiet_pip "$venv" install --upgrade pip
  fi
  # Into the existing environment when there is one: pip changes only what changed.
  quiet_pip "$venv" install -c "$constraints" -e ".[conformance]"
  touch "$stamp"
done
