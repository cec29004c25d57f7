"""Private PostgreSQL and Redis servers the fault suite may stop, restart and break.

The shared servers of the test run are never touched: a test that needs a server to go
away starts its own, on a free port on 127.0.0.1, in a temporary directory that is
removed afterwards. Missing server binaries skip the test (fail it under ``CI``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

SERVER_START_TIMEOUT = 60


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{what} (CI is set: a missing server binary fails the test)", pytrace=False)
    pytest.skip(what)


def _postgres_bindir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if candidates:
        return candidates[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (trust auth, no fsync) that a test may restart or stop.

    As root, the cluster runs as the ``postgres`` OS user (PostgreSQL refuses root).
    """

    DBNAME = "qtasks_faults"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="qtasks_faults_pg_"))
        self.data = self.root / "data"
        self.port = free_port()
        self._owner: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._owner:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.DBNAME}"

    def _run(self, *command: str, timeout: float = SERVER_START_TIMEOUT) -> None:
        subprocess.run(
            [*self._owner, str(self.bindir / command[0]), *command[1:]],
            check=True,
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def create(self) -> None:
        """initdb, start, create the database and migrate it."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start"
        )
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.DBNAME)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": self.url}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def restart(self, mode: str) -> None:
        """``pg_ctl restart -m mode`` (``fast`` or ``immediate``); returns once it accepts connections."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-m", mode, "-w", "restart"
        )

    def destroy(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass  # never started, or already gone
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


class PrivateRedis:
    """A ``redis-server`` child process (no persistence) that can be stopped and started again."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture(scope="session", name="private_postgres")
def private_postgres_fixture() -> Iterator[PrivatePostgres]:
    """A migrated database on a private PostgreSQL cluster, for the whole session."""
    bindir = _postgres_bindir()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        _missing("PostgreSQL server binaries (initdb, pg_ctl) not found")
    cluster = PrivatePostgres(bindir)
    try:
        try:
            cluster.create()
        except subprocess.CalledProcessError as exc:
            pytest.fail(f"private PostgreSQL did not start: {exc}\n{exc.stderr!r}\n{cluster.log()}")
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(name="private_db")
def private_db_fixture(private_postgres: PrivatePostgres, transactional_db: None) -> Iterator[str]:
    """The private cluster's database as the Django alias ``faults_pg``, in this thread, for this test.

    The connection is made by hand and not listed in the connection settings: Django's test
    case then treats it as a dynamically created connection and leaves it alone.
    """
    import environ
    from django.db import connections
    from django.db.utils import load_backend

    alias = "faults_pg"
    # configure_settings fills in Django's defaults; it insists on a "default" entry.
    config = connections.configure_settings(
        {"default": {}, alias: environ.Env.db_url_config(private_postgres.url)}
    )
    wrapper = load_backend(config[alias]["ENGINE"]).DatabaseWrapper(config[alias], alias)
    connections[alias] = wrapper
    try:
        yield alias
    finally:
        wrapper.close()
        del connections[alias]


@pytest.fixture(name="private_redis")
def private_redis_fixture() -> Iterator[PrivateRedis]:
    """A private Redis server, started; stopped after the test."""
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server not found")
    server = PrivateRedis(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
