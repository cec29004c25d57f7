# shellcheck shell=bash
# Helpers shared by scripts/test.sh and scripts/demo.sh: logging, finding a Python,
# cached virtualenvs, making sure PostgreSQL and Redis answer on 127.0.0.1, starting a
# PgBouncer of the tests' own, and installing Debian's Chromium for the browser tests.
# Sourced, never run. Every helper is idempotent.

QT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QT_PG_HOST=127.0.0.1
QT_PG_PORT=5432
QT_PG_USER=postgres
QT_REDIS_HOST=127.0.0.1
QT_REDIS_PORT=6379
QT_SERVICE_TIMEOUT=${QTASKS_SERVICE_TIMEOUT:-60}
QT_APT_UPDATED=0

qt_log() { printf '==> %s\n' "$*"; }
qt_warn() { printf 'WARNING: %s\n' "$*" >&2; }
qt_die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

qt_banner() {
  local line="================================================================================"
  printf '\n%s\n== %s\n%s\n' "$line" "$*" "$line"
}

# --- apt ---------------------------------------------------------------------------

qt_apt_install() {
  command -v apt-get >/dev/null 2>&1 || qt_die "apt-get not found: install $* yourself and rerun."
  [ "$(id -u)" -eq 0 ] || qt_die "installing $* needs root (apt-get): install them yourself or rerun as root."
  local log
  log=$(mktemp)
  if [ "$QT_APT_UPDATED" -eq 0 ]; then
    qt_log "apt-get update"
    if ! apt-get update -q >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      qt_die "apt-get update failed"
    fi
    QT_APT_UPDATED=1
  fi
  qt_log "apt-get install $*"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >"$log" 2>&1 </dev/null; then
    tail -n 30 "$log" >&2
    qt_die "apt-get install $* failed"
  fi
  rm -f "$log"
}

# --- Python and virtualenvs -------------------------------------------------------

# qt_python_path CANDIDATE MAJOR MINOR: print the real interpreter path if CANDIDATE
# runs and is that version (a pyenv shim for a missing version runs but fails).
qt_python_path() {
  "$1" -c "import sys; assert sys.version_info[:2] == ($2, $3); print(sys.executable)" 2>/dev/null
}

qt_find_python312() {
  local candidate found
  for candidate in ${QTASKS_PYTHON312:+"$QTASKS_PYTHON312"} python3.12 \
    /root/.pyenv/versions/3.12*/bin/python3.12 "${HOME:-/root}"/.pyenv/versions/3.12*/bin/python3.12 \
    /usr/bin/python3.12 /usr/local/bin/python3.12; do
    if found=$(qt_python_path "$candidate" 3 12); then
      printf '%s\n' "$found"
      return 0
    fi
  done
  return 1
}

qt_find_python311() {
  local candidate found
  for candidate in ${QTASKS_PYTHON311:+"$QTASKS_PYTHON311"} python3 python3.11 \
    /root/.pyenv/versions/3.11*/bin/python3.11 "${HOME:-/root}"/.pyenv/versions/3.11*/bin/python3.11 \
    /usr/bin/python3.11 /usr/local/bin/python3.11; do
    if found=$(qt_python_path "$candidate" 3 11); then
      printf '%s\n' "$found"
      return 0
    fi
  done
  return 1
}

# qt_ensure_venv NAME PYTHON PIP-ARGS...: make .venv/NAME with PYTHON and pip-install
# PIP-ARGS into it, unless the stamp shows the same interpreter, arguments and
# requirement files were installed already.
# qt_ensure_dev_venv PYTHON312: .venv/py312-dj6, the one scripts/test.sh and scripts/lint.sh share.
qt_ensure_dev_venv() {
  qt_ensure_venv py312-dj6 "$1" -r requirements/test.txt -r requirements/lint.txt -e . "Django>=6.0,<6.2"
}

qt_ensure_venv() {
  local name=$1 python=$2
  shift 2
  local dir="$QT_ROOT/.venv/$name" started=$SECONDS stamp
  stamp=$(
    cd "$QT_ROOT" || exit 1
    {
      "$python" -VV
      printf '%s\n' "$@"
      cat setup.py requirements/*.txt
      # An editable install made before the package existed maps nothing: redo it.
      if [ -f qtasks_django/__init__.py ]; then echo "package present"; fi
    } | sha256sum | cut -d' ' -f1
  )
  if [ -x "$dir/bin/python" ] && ! "$dir/bin/python" -c 'import sys' >/dev/null 2>&1; then
    qt_warn ".venv/$name is broken (its interpreter does not run): recreating it"
    rm -rf "$dir"
  fi
  if [ -f "$dir/.qtasks-stamp" ] && [ "$(cat "$dir/.qtasks-stamp")" = "$stamp" ]; then
    qt_log ".venv/$name is up to date ($("$dir/bin/python" -V 2>&1))"
    return 0
  fi
  if [ ! -x "$dir/bin/python" ]; then
    qt_log "creating .venv/$name with $python"
    if ! "$python" -m venv "$dir" >/dev/null 2>&1; then
      rm -rf "$dir"
      # Debian splits venv/ensurepip out of the interpreter package.
      local version
      version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
      qt_apt_install "python$version-venv"
      "$python" -m venv "$dir" || qt_die "could not create .venv/$name with $python"
    fi
  fi
  rm -f "$dir/.qtasks-stamp"
  qt_log "installing into .venv/$name: pip install $*"
  local log="$dir/pip-install.log"
  if ! (cd "$QT_ROOT" && PIP_NO_INPUT=1 "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@") \
    >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    qt_die "pip install into .venv/$name failed (full log: .venv/$name/pip-install.log)"
  fi
  printf '%s\n' "$stamp" >"$dir/.qtasks-stamp"
  qt_log ".venv/$name ready in $((SECONDS - started)) s: $("$dir/bin/python" -V 2>&1)," \
    "Django $("$dir/bin/python" -c 'import django; print(django.get_version())')"
}

# --- PostgreSQL -------------------------------------------------------------------

qt_pg_ready() { pg_isready -q -h "$QT_PG_HOST" -p "$QT_PG_PORT" -t 2 >/dev/null 2>&1; }

# qt_psql SQL: run SQL as the postgres user over TCP, never prompting for a password.
qt_psql() {
  PGCONNECT_TIMEOUT=5 psql -w -X -q -A -t -v ON_ERROR_STOP=1 -h "$QT_PG_HOST" -p "$QT_PG_PORT" \
    -U "$QT_PG_USER" -d postgres -c "$1"
}

qt_pg_version() { find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1; }

qt_wait_for() {
  local what=$1 check=$2 waited=0
  until "$check"; do
    if [ "$waited" -ge "$QT_SERVICE_TIMEOUT" ]; then
      qt_die "$what did not answer within ${QT_SERVICE_TIMEOUT} s"
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

qt_ensure_postgres() {
  if ! command -v pg_isready >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
    qt_apt_install postgresql
  fi
  if ! qt_pg_ready; then
    local version
    version=$(qt_pg_version)
    if [ -z "$version" ]; then
      qt_apt_install postgresql
      version=$(qt_pg_version)
      [ -n "$version" ] || qt_die "PostgreSQL installed but no cluster under /etc/postgresql"
    fi
    if [ ! -d "/etc/postgresql/$version/main" ]; then
      qt_log "creating PostgreSQL cluster $version/main"
      pg_createcluster "$version" main >/dev/null
    fi
    local port
    port=$(pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1 == v && $2 == "main" { print $3 }')
    if [ -n "$port" ] && [ "$port" != "$QT_PG_PORT" ]; then
      qt_die "PostgreSQL cluster $version/main is set to port $port, the tests use $QT_PG_PORT:" \
        "set 'port = $QT_PG_PORT' in /etc/postgresql/$version/main/postgresql.conf"
    fi
    qt_log "starting PostgreSQL $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start </dev/null ||
      qt_warn "pg_ctlcluster start returned non-zero (already running?)"
    qt_wait_for "PostgreSQL on $QT_PG_HOST:$QT_PG_PORT" qt_pg_ready
  fi
  if ! qt_psql 'select 1' >/dev/null 2>&1; then
    qt_pg_trust_local_postgres
  fi
  [ "$(qt_psql "select rolsuper or rolcreatedb from pg_roles where rolname = current_user")" = t ] ||
    qt_die "PostgreSQL user $QT_PG_USER may not create databases (needed for test databases)"
  qt_log "PostgreSQL answers on $QT_PG_HOST:$QT_PG_PORT as $QT_PG_USER"
}

# A fresh Debian cluster asks for a password over TCP; the tests connect as postgres
# without one, so let that user in from 127.0.0.1 (a throwaway local test server).
qt_pg_trust_local_postgres() {
  [ "$(id -u)" -eq 0 ] || qt_die "cannot connect as $QT_PG_USER to $QT_PG_HOST:$QT_PG_PORT without a password" \
    "(allow it in pg_hba.conf, or rerun as root so this script can)"
  local hba marker="# qtasks_django test scripts: trust postgres on loopback"
  hba=$(runuser -u postgres -- psql -X -A -t -c 'show hba_file' </dev/null) ||
    qt_die "cannot reach PostgreSQL through its local socket to fix authentication"
  if ! grep -qF "$marker" "$hba"; then
    qt_log "allowing $QT_PG_USER from 127.0.0.1 without password in $hba"
    sed -i "1i $marker\nhost all $QT_PG_USER 127.0.0.1/32 trust\nhost all $QT_PG_USER ::1/128 trust" "$hba"
  fi
  runuser -u postgres -- psql -X -q -c 'select pg_reload_conf()' </dev/null >/dev/null
  sleep 1
  qt_psql 'select 1' >/dev/null || qt_die "still cannot connect as $QT_PG_USER to $QT_PG_HOST:$QT_PG_PORT"
}

# qt_pg_create_db NAME: create database NAME unless it exists.
qt_pg_create_db() {
  if [ -z "$(qt_psql "select 1 from pg_database where datname = '$1'")" ]; then
    qt_log "creating database $1"
    qt_psql "create database \"$1\"" >/dev/null
  fi
}

# --- Redis ------------------------------------------------------------------------

qt_redis_ready() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(timeout 3 redis-cli -h "$QT_REDIS_HOST" -p "$QT_REDIS_PORT" ping 2>/dev/null)" = PONG ]
    return
  fi
  # No client installed (Redis may run elsewhere): speak the protocol over bash's /dev/tcp.
  local fd reply=
  exec {fd}<>"/dev/tcp/$QT_REDIS_HOST/$QT_REDIS_PORT" || return 1
  printf 'PING\r\n' >&"$fd"
  IFS= read -r -t 3 reply <&"$fd" || true
  exec {fd}>&-
  [ "${reply%$'\r'}" = "+PONG" ]
} 2>/dev/null

qt_ensure_redis() {
  if qt_redis_ready; then
    qt_log "Redis answers on $QT_REDIS_HOST:$QT_REDIS_PORT"
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    qt_apt_install redis-server
  fi
  # The package's own start-up may already have brought it up.
  if ! qt_redis_ready; then
    qt_log "starting Redis on $QT_REDIS_HOST:$QT_REDIS_PORT"
    (cd /tmp && redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$QT_REDIS_PORT" \
      --save "" --appendonly no >/dev/null) ||
      (cd /tmp && redis-server --daemonize yes --bind 127.0.0.1 --port "$QT_REDIS_PORT" \
        --save "" --appendonly no >/dev/null) ||
      qt_die "redis-server did not start"
    qt_wait_for "Redis on $QT_REDIS_HOST:$QT_REDIS_PORT" qt_redis_ready
  fi
  qt_log "Redis answers on $QT_REDIS_HOST:$QT_REDIS_PORT"
}

# --- PgBouncer (the pooler tests) ------------------------------------------------

# qt_start_pgbouncer DIR: start a PgBouncer of our own in transaction pooling mode in front
# of $QT_PG_HOST:$QT_PG_PORT, its config, pid and log files under DIR (never the system
# service's), on 127.0.0.1:${QTASKS_TEST_PGBOUNCER_PORT:-6432}, or on a free port when that
# one is taken (by a system pgbouncer, say). Installs Debian's pgbouncer when missing. Sets
# QT_PGBOUNCER_URL (no database name) and QT_PGBOUNCER_PID; qt_stop_pgbouncer stops it.
QT_PGBOUNCER_URL=
QT_PGBOUNCER_PID=
qt_start_pgbouncer() {
  local dir=$1 port=${QTASKS_TEST_PGBOUNCER_PORT:-6432} run_as=()
  if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    qt_apt_install pgbouncer
  fi
  local binary
  binary=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  if qt_port_taken "$port"; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fi
  mkdir -p "$dir"
  # PgBouncer refuses to run as root: as root it runs as postgres, which must own its files.
  if [ "$(id -u)" -eq 0 ]; then run_as=(-u postgres); fi
  printf '"%s" ""\n' "$QT_PG_USER" >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$QT_PG_HOST port=$QT_PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits,options
admin_users = $QT_PG_USER
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
INI
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres "$dir"; fi
  "$binary" -d -q "${run_as[@]}" "$dir/pgbouncer.ini" || {
    tail -n 20 "$dir/pgbouncer.log" >&2 2>/dev/null
    qt_die "pgbouncer did not start (log above)"
  }
  local waited=0
  until PGCONNECT_TIMEOUT=2 psql -w -X -q -A -t -h 127.0.0.1 -p "$port" -U "$QT_PG_USER" -d postgres \
    -c 'select 1' >/dev/null 2>&1; do
    if [ "$waited" -ge "$QT_SERVICE_TIMEOUT" ]; then
      tail -n 20 "$dir/pgbouncer.log" >&2 2>/dev/null
      qt_die "pgbouncer on 127.0.0.1:$port did not answer within ${QT_SERVICE_TIMEOUT} s"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  QT_PGBOUNCER_PID=$(cat "$dir/pgbouncer.pid")
  QT_PGBOUNCER_URL="postgres://$QT_PG_USER@127.0.0.1:$port"
  qt_log "PgBouncer $("$binary" --version | head -n 1 | cut -d' ' -f2) (transaction pooling) answers on" \
    "127.0.0.1:$port in front of $QT_PG_HOST:$QT_PG_PORT"
}

qt_stop_pgbouncer() {
  if [ -n "$QT_PGBOUNCER_PID" ]; then
    kill "$QT_PGBOUNCER_PID" 2>/dev/null || true
    QT_PGBOUNCER_PID=
  fi
}

# qt_port_taken PORT: whether something listens on 127.0.0.1:PORT.
qt_port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# --- Chromium (the browser tier) --------------------------------------------------

# Where the browser tests look for Chromium (tests/browser/conftest.py reads the same variable).
QT_CHROMIUM=${QTASKS_TEST_CHROMIUM:-/usr/bin/chromium}

# qt_ensure_chromium: install Debian's chromium when $QT_CHROMIUM is missing. Never fatal:
# without it the browser tests skip with the reason, or fail when CI is set.
qt_ensure_chromium() {
  if [ ! -x "$QT_CHROMIUM" ]; then
    if [ "$QT_CHROMIUM" != /usr/bin/chromium ]; then
      qt_warn "QTASKS_TEST_CHROMIUM=$QT_CHROMIUM is not an executable: the browser tests will skip (fail under CI)"
      return 0
    fi
    # In a subshell: qt_apt_install exits on failure, and that must not end the run.
    if ! (qt_apt_install chromium); then
      qt_warn "could not install chromium: the browser tests will skip (fail under CI)"
      return 0
    fi
    QT_APT_UPDATED=1
  fi
  # Debian's launcher script prints shell noise on stderr; the version is the last line out.
  qt_log "Chromium: $(timeout 30 "$QT_CHROMIUM" --version 2>/dev/null | tail -n 1) ($QT_CHROMIUM)"
}
