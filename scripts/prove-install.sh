#!/usr/bin/env bash
# Prove that the package works as installed, without the test extra: the defect this catches is
# a module importing something only the tests install (`econtract --help` then fails on a fresh
# machine while every test passes).
#
# Into a throwaway virtual environment (pip's cache is used; packages come from the configured
# index only), from a copy of the repository's files:
#   1. pip install . (no extras);
#   2. import every module of econtract, signing, verify, keys and api.py;
#   3. `econtract --help` and the --help of every command and group, walked from the command
#      tree typer builds, so a new command is covered without editing this script;
#   4. `econtract serve` on a free port with a fresh data directory until GET /healthz,
#      GET /readyz, the /verify and /docs pages and their scripts answer 200 (at most
#      SERVE_TIMEOUT seconds), then stop it.
# Any failure stops the script with a message and a non-zero status.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
serve_timeout="${SERVE_TIMEOUT:-90}"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    sleep 2
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "prove-install: FAILED: $*" >&2
  exit 1
}
step() { echo "prove-install: $*"; }

# The settings come from this script alone, never from the caller's environment or a .env file.
for name in $(compgen -e); do
  case "$name" in ECONTRACT_*) unset "$name" ;; esac
done

# A copy of the files git knows (tracked, and new files that are not ignored), so that stale
# build/ or egg-info directories of a working tree never reach the wheel.
step "copying the sources"
mkdir -p "$work/src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$root" ls-files -z --cached --others --exclude-standard \
    | tar -C "$root" --null --files-from=- --ignore-failed-read -cf - \
    | tar -C "$work/src" -xf -
else
  tar -C "$root" --exclude=.venv --exclude=var --exclude=build --exclude='*.egg-info' -cf - . \
    | tar -C "$work/src" -xf -
fi

step "installing without the test extra into $work/venv"
"$python" -m venv "$work/venv"
venv="$work/venv/bin"
"$venv/python" -m pip install --quiet --upgrade pip </dev/null || fail "pip could not be upgraded"
"$venv/python" -m pip install --quiet "$work/src" </dev/null || fail "pip install . failed"
if "$venv/python" -c 'import pytest' 2>/dev/null; then
  fail "pytest is installed without the test extra: a runtime dependency pulls it in"
fi

# Run from an empty directory: nothing of the repository is importable from the current
# directory, and no ./var or .env is read.
mkdir -p "$work/run"
cd "$work/run"
export ECONTRACT_DATA_DIR="$work/run/data"

step "importing every module of the installed package"
"$venv/python" - <<'EOF' || fail "a module of the installed package does not import"
import importlib
import pkgutil

names = ["api", "econtract", "signing", "verify", "keys"]
for name in names[1:]:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, f"{name}."):
        # Alembic's env.py and revisions run migrations when imported; alembic loads them.
        if not info.name.startswith("econtract.migrations"):
            names.append(info.name)
for name in names:
    importlib.import_module(name)
print(f"prove-install: {len(names)} modules imported")
EOF

step "econtract --help and every command's --help"
"$venv/python" - "$venv/econtract" <<'EOF' || fail "a command's --help failed"
import subprocess
import sys

import typer.main

from econtract.cli import app

executable = sys.argv[1]


def walk(command, path):
    """Every command and group under ``command``, as the words typed after ``econtract``."""
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, [*path, name])


paths = list(walk(typer.main.get_command(app), []))
if len(paths) < 2:
    sys.exit("prove-install: the command tree has no commands")
failed = 0
for path in paths:
    argv = [executable, *path, "--help"]
    done = subprocess.run(
        argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, check=False
    )
    ok = done.returncode == 0 and done.stdout.startswith("Usage:") and not done.stderr.strip()
    if not ok:
        failed += 1
        print(f"FAILED (exit {done.returncode}): econtract {' '.join([*path, '--help'])}")
        print(done.stdout + done.stderr)
print(f"prove-install: {len(paths) - failed} of {len(paths)} --help pages answered")
sys.exit(1 if failed else 0)
EOF

port="$("$venv/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
step "econtract serve on 127.0.0.1:$port (data in $ECONTRACT_DATA_DIR)"
"$venv/econtract" serve --host 127.0.0.1 --port "$port" </dev/null >"$work/serve.log" 2>&1 &
server_pid=$!
"$venv/python" - "$port" "$server_pid" "$serve_timeout" <<'EOF' || {
import os
import sys
import time
import urllib.error
import urllib.request

port, pid, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
# Besides health, the pages and the files they load: templates and static files are package
# data, which a wheel leaves out unless the packaging names them.
pending = ["/healthz", "/readyz", "/verify", "/static/verify.js", "/docs", "/static/docs.js"]
while pending:
    if time.monotonic() > deadline:
        sys.exit(f"prove-install: {pending[0]} did not answer 200 within {timeout:.0f} s")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("prove-install: econtract serve exited before it answered")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{pending[0]}", timeout=5) as r:
            if r.status == 200:
                print(f"prove-install: GET {pending[0]} answered 200")
                pending.pop(0)
                continue
    except (urllib.error.URLError, OSError):
        pass
    time.sleep(0.5)
EOF
  echo "--- the server's output:" >&2
  tail -n 40 "$work/serve.log" >&2
  fail "econtract serve did not come up"
}

step "stopping the server"
kill -TERM "$server_pid"
for _ in $(seq 1 40); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.5
done
if kill -0 "$server_pid" 2>/dev/null; then
  tail -n 20 "$work/serve.log" >&2
  fail "econtract serve did not stop within 20 s of SIGTERM"
fi
status=0
wait "$server_pid" || status=$?
server_pid=""
# uvicorn shuts down gracefully, then re-raises the signal it caught: 143 is 128 + SIGTERM.
if [ "$status" -ne 0 ] && [ "$status" -ne 143 ]; then
  tail -n 20 "$work/serve.log" >&2
  fail "econtract serve exited with status $status after SIGTERM"
fi
step "OK: installed without the test extra, every --help answered, serve came up and stopped"
