#!/usr/bin/env bash
# Lint, format, types and layering; exits non-zero at the first check that fails.
#
#   bash scripts/lint.sh
#
# Runs in .venv/py312-dj6 (the virtualenv of scripts/test.sh, made here when missing):
#   ruff check and ruff format --check   lint and format of the whole checkout
#   mypy                                 types of the package (pyproject.toml: strict on the ground and queue/)
#   lint-imports                         the floors, admin never imports worker/, no import cycles
#   scripts/check_structure.py           modules within 300 lines, no private imports, reasons for late imports
# docs/architecture.md explains the rules.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$QT_ROOT"

py312=$(qt_find_python312) || qt_die "Python 3.12 not found; install it or point QTASKS_PYTHON312 at one"
qt_ensure_dev_venv "$py312"
export PATH="$QT_ROOT/.venv/py312-dj6/bin:$PATH"
# mypy's Django plugin loads the test settings; SQLite needs no server.
export DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL="sqlite:///${TMPDIR:-/tmp}/qtasks-lint.sqlite3"

run() {
  printf '+ %s\n' "$*"
  "$@"
}
run ruff check .
run ruff format --check .
run mypy
run lint-imports
run python scripts/check_structure.py
