#!/usr/bin/env bash
# THE demo command: set everything up and run the example project.
#
#   bash scripts/demo.sh           migrate the example project (SQLite, no servers), create the
#                                  admin/admin superuser, start a qtasks_worker in the background
#                                  and the development server on http://127.0.0.1:8000/
#                                  (QTASKS_DEMO_PORT to change it); Ctrl-C stops both.
#   bash scripts/demo.sh --smoke   the same on a throwaway database and a free port, then
#                                  `manage.py demo_smoke` runs every demo task and every way of
#                                  calling one (rollback, waiting, cancelling) through the worker;
#                                  the worker must then stop cleanly on SIGTERM. Stops by itself.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$QT_ROOT"

MODE=run
case "${1:-}" in
  "") ;;
  --smoke) MODE=smoke ;;
  -h | --help)
    sed -n '2,11p' "$0"
    exit 0
    ;;
  *) qt_die "unknown argument '$1' (use --smoke or nothing)" ;;
esac

STARTED=$SECONDS
WORKER_PID=
SERVER_PID=
SCRATCH=

# stop_worker: SIGTERM the worker and wait up to 30 s; returns its exit code, 124 if it had
# to be killed.
stop_worker() {
  local pid=$WORKER_PID status=0 waited=0
  WORKER_PID=
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    qt_log "stopping the worker (SIGTERM to pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$waited" -ge 300 ]; then
        qt_warn "the worker did not stop within 30 s of SIGTERM: killing it"
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return 124
      fi
      sleep 0.1
      waited=$((waited + 1))
    done
  fi
  wait "$pid" 2>/dev/null || status=$?
  return "$status"
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # Piped into tee or less, the reader may be gone after a Ctrl-C: a write must not kill
  # us (SIGPIPE) before the worker is stopped.
  trap '' PIPE
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  stop_worker || true
  if [ -n "$SCRATCH" ]; then rm -rf "$SCRATCH"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 141' PIPE

manage() { "$QT_ROOT/.venv/demo/bin/python" manage.py "$@"; }

# start_worker LOG: start qtasks_worker in the background (output to LOG, or to the terminal
# for "-"), in its own session so that a Ctrl-C meant for the foreground server reaches it
# only as our single SIGTERM (a second signal would make it release tasks at once).
start_worker() {
  local log=$1 python="$QT_ROOT/.venv/demo/bin/python"
  if [ "$log" = - ]; then
    setsid "$python" manage.py qtasks_worker --concurrency 4 </dev/null &
  else
    setsid "$python" manage.py qtasks_worker --concurrency 4 </dev/null >"$log" 2>&1 &
  fi
  WORKER_PID=$!
  sleep 1
  if ! kill -0 "$WORKER_PID" 2>/dev/null; then
    if [ "$log" != - ]; then tail -n 40 "$log" >&2; fi
    qt_die "qtasks_worker exited at start-up"
  fi
  qt_log "qtasks_worker running (pid $WORKER_PID, concurrency 4)"
}

# http_get URL SECONDS: wait until URL answers 200 (or give up after SECONDS).
http_get() {
  "$QT_ROOT/.venv/demo/bin/python" - "$1" "$2" <<'PY'
import sys
import time
import urllib.error
import urllib.request

url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            if response.status == 200:
                print(f"==> GET {url}: 200")
                sys.exit(0)
            problem = f"status {response.status}"
    except urllib.error.HTTPError as exc:
        problem = f"status {exc.code}"
    except OSError as exc:
        problem = str(exc)
    if time.monotonic() > deadline:
        sys.exit(f"ERROR: GET {url}: {problem}")
    time.sleep(0.3)
PY
}

setup() {
  qt_banner "Setting up the demo"
  local python
  if ! python=$(qt_find_python312) && ! python=$(command -v python3); then
    qt_apt_install python3 python3-venv
    python=$(command -v python3)
  fi
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    qt_die "$python is $("$python" -V 2>&1); the demo needs Python 3.11 or newer"
  qt_ensure_venv demo "$python" -r requirements/demo.txt -e .
  qt_log "migrating ${DATABASE_URL:-the SQLite database db.sqlite3}"
  manage migrate --noinput -v 0
  local out
  if out=$(DJANGO_SUPERUSER_USERNAME=admin DJANGO_SUPERUSER_PASSWORD=admin \
    DJANGO_SUPERUSER_EMAIL=admin@example.com manage createsuperuser --noinput 2>&1); then
    qt_log "created the superuser admin (password admin)"
  elif grep -qiE "already (taken|exists)" <<<"$out"; then
    qt_log "superuser admin already exists"
  else
    printf '%s\n' "$out" >&2
    qt_die "createsuperuser failed"
  fi
}

run_demo() {
  local port=${QTASKS_DEMO_PORT:-8000}
  setup
  qt_banner "Running the demo"
  start_worker -
  cat <<TXT

    Demo:   http://127.0.0.1:$port/
    Admin:  http://127.0.0.1:$port/admin/   (login admin / admin)
    Ctrl-C stops the server and the worker.

TXT
  manage runserver "127.0.0.1:$port"
}

run_smoke() {
  SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/qtasks-demo-smoke.XXXXXX")
  export DATABASE_URL="sqlite:///$SCRATCH/db.sqlite3"
  # Set, not unset: a developer's .env must not bring Redis or DEBUG=false into the smoke
  # (settings read .env only for variables the environment does not set).
  export REDIS_URL= DEBUG=true
  unset DJANGO_SETTINGS_MODULE
  setup
  qt_banner "Demo smoke test"
  start_worker "$SCRATCH/worker.log"
  local port
  port=$("$QT_ROOT/.venv/demo/bin/python" -c \
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$QT_ROOT/.venv/demo/bin/python" manage.py runserver --noreload "127.0.0.1:$port" \
    </dev/null >"$SCRATCH/server.log" 2>&1 &
  SERVER_PID=$!
  local status=0
  http_get "http://127.0.0.1:$port/" 30 && http_get "http://127.0.0.1:$port/admin/login/" 10 &&
    http_get "http://127.0.0.1:$port/static/demo/status.js" 10 || status=$?
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$SCRATCH/server.log" >&2
    qt_die "the example project's pages did not answer 200"
  fi
  manage demo_smoke || status=$?
  local worker_status=0
  stop_worker || worker_status=$?
  if [ "$status" -ne 0 ] || [ "$worker_status" -ne 0 ]; then
    printf '\n--- worker log (last 60 lines) ---\n' >&2
    tail -n 60 "$SCRATCH/worker.log" >&2
    [ "$status" -eq 0 ] || qt_die "demo_smoke failed (exit $status)"
    qt_die "the worker did not exit 0 within 30 s of SIGTERM (exit $worker_status)"
  fi
  qt_log "the worker stopped cleanly on SIGTERM (exit 0)"
  qt_banner "Demo smoke test passed in $((SECONDS - STARTED)) s"
}

if [ "$MODE" = smoke ]; then run_smoke; else run_demo; fi
