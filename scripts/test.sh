#!/usr/bin/env bash
# THE test command: runs the whole test suite.
#
#   bash scripts/test.sh [PYTEST-ARGS...]
#
# Makes sure PostgreSQL and Redis answer on 127.0.0.1 (installing and starting them when
# they are missing), starts a PgBouncer of its own in transaction pooling mode in front of
# that PostgreSQL (installing Debian's pgbouncer when missing, stopping it at exit; tests
# marked pgbouncer reach it through QTASKS_TEST_PGBOUNCER_URL), makes sure Debian's Chromium
# is installed (for the browser tier), keeps two virtualenvs up to date under .venv/, then runs these steps in order, stopping at the
# first that fails:
#   a. Python 3.12 + Django 6: lint, format, types and layering (scripts/lint.sh), then
#      manage.py check and makemigrations --check (test and example settings)
#   b. Python 3.12 + Django 6, PostgreSQL + Redis: every test, the browser tier included
#   c. Python 3.12 + Django 6, SQLite, no Redis: every test not marked postgres, redis or browser
#   d. Python 3.11 + Django 5.2 (with the django-tasks backport), PostgreSQL + Redis as the
#      notifier: every test but the browser tier
# PYTEST-ARGS are passed to every pytest run (e.g. `-k claim -x`). Environment:
#   QTASKS_TEST_MATRIX=quick   run step b only
#   CI=true                     a test whose server (marker postgres/redis/pgbouncer) or browser is missing fails, not skips
#   QTASKS_TEST_PG_DB=NAME      PostgreSQL database (default qtasks; tests use test_NAME)
#   QTASKS_TEST_REDIS_DB=N      Redis database number (default 15)
#   QTASKS_TEST_PGBOUNCER_PORT=N  PgBouncer's port (default 6432; a free one when 6432 is taken)
#   QTASKS_TEST_CHROMIUM=PATH   Chromium for the browser tier (default /usr/bin/chromium, installed
#                               with apt-get when missing; another path is used as it is)
# The last line is the total over all steps: "total: N passed, N failed, N skipped".
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$QT_ROOT"

PYTEST_ARGS=("$@")
MATRIX=${QTASKS_TEST_MATRIX:-full}
case "$MATRIX" in
  full | quick) ;;
  *) qt_die "QTASKS_TEST_MATRIX must be 'full' or 'quick', not '$MATRIX'" ;;
esac
# Two runs at once on one machine must not share these (pytest-django drops test_<db>).
PG_DB=${QTASKS_TEST_PG_DB:-qtasks}
PG_URL="postgres://$QT_PG_USER@$QT_PG_HOST:$QT_PG_PORT/$PG_DB"
REDIS_URL_TESTS="redis://$QT_REDIS_HOST:$QT_REDIS_PORT/${QTASKS_TEST_REDIS_DB:-15}"
REPORTS="$QT_ROOT/.venv/reports"
STARTED=$SECONDS
STEP_RESULTS=()
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/qtasks-test.XXXXXX")
# Apart from SCRATCH (private to this user): PgBouncer runs as postgres when we are root.
PGBOUNCER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/qtasks-pgbouncer.XXXXXX")

summarize() {
  # Per-step and total counts from the JUnit reports that this run wrote.
  python3 - "$REPORTS" <<'PY' || true
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

total = [0, 0, 0]
lines = []
for report in sorted(Path(sys.argv[1]).glob("*.xml")):
    root = ET.parse(report).getroot()
    counts = [0, 0, 0]
    for suite in [root] if root.tag == "testsuite" else root.iter("testsuite"):
        tests, failures, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        for i, n in enumerate((tests - failures - errors - skipped, failures + errors, skipped)):
            counts[i] += n
    total = [a + b for a, b in zip(total, counts)]
    lines.append(f"  {report.stem}: {counts[0]} passed, {counts[1]} failed, {counts[2]} skipped")
print("\n".join(lines))
summary = f"total: {total[0]} passed, {total[1]} failed, {total[2]} skipped"
(Path(sys.argv[1]) / "summary.txt").write_text(summary + "\n")
print(summary)
PY
}

finish() {
  local status=$?
  qt_stop_pgbouncer
  rm -rf "$SCRATCH" "$PGBOUNCER_DIR"
  qt_banner "Summary"
  if [ ${#STEP_RESULTS[@]} -gt 0 ]; then printf '  %s\n' "${STEP_RESULTS[@]}"; fi
  local elapsed=$((SECONDS - STARTED))
  printf 'Total time: %dm%02ds. Result: %s\n' $((elapsed / 60)) $((elapsed % 60)) \
    "$([ "$status" -eq 0 ] && echo PASSED || echo "FAILED (exit $status)")"
  summarize
  exit "$status"
}
trap finish EXIT

# run_step TITLE COMMAND...: run one step under a banner; stop the whole run if it fails.
run_step() {
  local title=$1 started=$SECONDS
  shift
  qt_banner "$title"
  if "$@"; then
    STEP_RESULTS+=("PASS  $title ($((SECONDS - started)) s)")
  else
    STEP_RESULTS+=("FAIL  $title ($((SECONDS - started)) s)")
    qt_banner "FAILED: $title"
    exit 1
  fi
}

# in_env VENV [NAME=VALUE...] -- COMMAND...: run COMMAND with the venv's python first on
# PATH and only the given server settings (none inherited from the caller's shell).
in_env() {
  local venv="$QT_ROOT/.venv/$1"
  shift
  local assignments=()
  while [ "$1" != -- ]; do
    assignments+=("$1")
    shift
  done
  shift
  printf '+'
  printf ' %q' "${assignments[@]}" "$@"
  printf '\n'
  env -u DATABASE_URL -u REDIS_URL -u QTASKS_TEST_NOTIFIER -u QTASKS_TEST_PGBOUNCER_URL -u DJANGO_SETTINGS_MODULE \
    PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" "${assignments[@]}" "$@"
}

# pytest_in VENV REPORT [NAME=VALUE...] -- [PYTEST-ARGS...]: run the suite, then the caller's args.
pytest_in() {
  local venv=$1 report=$2 status=0
  shift 2
  in_env "$venv" DJANGO_SETTINGS_MODULE=tests.settings "$@" --junitxml="$REPORTS/$report.xml" \
    ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"} || status=$?
  # With a selection of the caller's (-k, a path), a step may rightly select nothing.
  if [ "$status" -eq 5 ] && [ ${#PYTEST_ARGS[@]} -gt 0 ]; then
    qt_warn "no test selected in this step"
    return 0
  fi
  return "$status"
}

step_checks() {
  bash "$QT_ROOT/scripts/lint.sh" || return 1
  local tests_db="DATABASE_URL=sqlite:///$SCRATCH/checks.sqlite3"
  local example_db="DATABASE_URL=sqlite:///$SCRATCH/example.sqlite3"
  in_env py312-dj6 DJANGO_SETTINGS_MODULE=tests.settings "$tests_db" -- python manage.py check &&
    in_env py312-dj6 DJANGO_SETTINGS_MODULE=tests.settings "$tests_db" -- \
      python manage.py makemigrations --check --dry-run &&
    in_env py312-dj6 "$example_db" -- python manage.py check &&
    in_env py312-dj6 "$example_db" -- python manage.py makemigrations --check --dry-run
}

# step_postgres VENV REPORT MARKERS [NAME=VALUE...]: the suite on PostgreSQL + Redis;
# MARKERS is a pytest -m expression, "" for every test.
step_postgres() {
  local venv=$1 report=$2 markers=$3
  shift 3
  local select=()
  if [ -n "$markers" ]; then select=(-m "$markers"); fi
  pytest_in "$venv" "$report" DATABASE_URL="$PG_URL" REDIS_URL="$REDIS_URL_TESTS" \
    QTASKS_TEST_PGBOUNCER_URL="$QT_PGBOUNCER_URL" "$@" -- \
    python -m pytest ${select[@]+"${select[@]}"}
}

# The browser tier runs in step b only: the admin's pages are the same on SQLite and Django 5.2,
# and starting Chromium again there would only cost time.
step_sqlite() {
  pytest_in py312-dj6 c-py312-dj6-sqlite DATABASE_URL="sqlite:///$SCRATCH/db.sqlite3" -- \
    python -m pytest -m "not postgres and not redis and not browser"
}

main() {
  rm -rf "$REPORTS"
  mkdir -p "$REPORTS"

  qt_banner "Services and virtualenvs"
  qt_ensure_postgres
  qt_pg_create_db "$PG_DB"
  qt_ensure_redis
  qt_start_pgbouncer "$PGBOUNCER_DIR"
  qt_ensure_chromium

  local py312 py311
  py312=$(qt_find_python312) ||
    qt_die "Python 3.12 not found (tried python3.12, ~/.pyenv/versions/3.12*, /usr/bin/python3.12);" \
      "install it or point QTASKS_PYTHON312 at one"
  qt_ensure_dev_venv "$py312"
  if [ "$MATRIX" = full ]; then
    py311=$(qt_find_python311) ||
      qt_die "Python 3.11 not found (tried python3, python3.11, ~/.pyenv/versions/3.11*, /usr/bin/python3.11);" \
        "install it or point QTASKS_PYTHON311 at one"
    # With the django-tasks backport: QTasksBackend's tests run on Django 5.2 too.
    qt_ensure_venv py311-dj52 "$py311" -r requirements/test.txt -c requirements/django52.txt -e ".[django-tasks]"
  fi

  if [ "$MATRIX" = full ]; then
    run_step "a. checks: lint, format, types, layering; manage.py check (Python 3.12, Django 6)" step_checks
  fi
  run_step "b. tests: Python 3.12, Django 6, PostgreSQL + Redis" step_postgres py312-dj6 b-py312-dj6-postgres ""
  if [ "$MATRIX" = full ]; then
    run_step "c. tests: Python 3.12, Django 6, SQLite (not postgres, not redis)" step_sqlite
    run_step "d. tests: Python 3.11, Django 5.2, PostgreSQL + Redis notifier" \
      step_postgres py311-dj52 d-py311-dj52-postgres "not browser" QTASKS_TEST_NOTIFIER=redis
  fi
}

main
