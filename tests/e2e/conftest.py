"""Fixtures of the end-to-end tier: real ``manage.py qtasks_worker`` subprocesses.

A worker started here opens the very test database pytest-django created (its
``DATABASE_URL`` points at ``test_<name>`` on PostgreSQL, at the ``TEST.NAME`` file on
SQLite) and inherits the rest of the environment (``REDIS_URL``, ``QTASKS_TEST_NOTIFIER``).
Tests that use it are ``transaction=True`` so the rows they write are committed and
visible to the worker. Every worker still alive when its test ends is killed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from tests.tasks_e2e import KILL_SWITCH

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTCOME_LINE = re.compile(
    r"task=(?P<task>\S+) uuid=(?P<uuid>[0-9a-f-]{36}) status=(?P<status>\w+) attempt=(?P<attempt>\d+) duration=\d+\.\d+s"
)


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05) -> object:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def worker_database_url() -> str:
    """A ``DATABASE_URL`` naming the test database this test runs against."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    if connection.vendor == "postgresql":
        base = urlsplit(os.environ["DATABASE_URL"])
        return urlunsplit(base._replace(path="/" + quote(name)))
    raise NotImplementedError(f"e2e tests do not know how to point a worker at {connection.vendor}")


class WorkerProcess:
    """One ``qtasks_worker`` subprocess, its output captured in files."""

    def __init__(self, args: list[str], *, env: dict[str, str], log_dir: Path, worker_id: str) -> None:
        self.id = worker_id
        self.args = args
        self.stdout_path = log_dir / f"{worker_id}.stdout"
        self.stderr_path = log_dir / f"{worker_id}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "qtasks_worker", "--worker-id", worker_id, *args],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, not the workers
            )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def outcomes(self) -> list[dict[str, str]]:
        """The one-per-outcome log lines, parsed."""
        return [m.groupdict() for m in OUTCOME_LINE.finditer(self.stderr())]

    def send(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end by itself; fail (and kill it) if it does not."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"worker {self.id} did not exit within {timeout}s\n{self.describe()}")

    def wait_registered(self, timeout: float = 30.0) -> None:
        """Wait until the worker row exists: signal handlers are installed and the loop starts."""
        from qtasks_django.models import WorkerRecord

        def ready() -> bool:
            if not self.alive():
                pytest.fail(f"worker {self.id} exited early with {self.proc.returncode}\n{self.describe()}")
            return WorkerRecord.objects.filter(id=self.id).exists()

        wait_for(ready, timeout=timeout, what=f"worker {self.id} to register")

    def wait_log(self, text: str, timeout: float = 15.0) -> None:
        wait_for(
            lambda: text in self.stderr(), timeout=timeout, what=f"{text!r} in the log of worker {self.id}"
        )

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait(10)

    def describe(self) -> str:
        return f"args: {self.args}\n--- stdout ---\n{self.stdout()}\n--- stderr ---\n{self.stderr()}"


@pytest.fixture
def worker_env() -> dict[str, str]:
    """The environment of a worker subprocess that talks to this test's database."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=worker_database_url(),
        PYTHONUNBUFFERED="1",
    )
    env[KILL_SWITCH] = "1"
    return env


@pytest.fixture
def start_worker(
    transactional_db: None, worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_worker(*options, env={...})`` starts ``qtasks_worker`` (fast polling unless given).

    ``env`` adds to or overrides the worker's environment. Workers still running at teardown are killed.
    """
    started: list[WorkerProcess] = []

    def start(
        *options: str, worker_id: str | None = None, env: dict[str, str] | None = None
    ) -> WorkerProcess:
        args = list(options)
        if "--poll-interval" not in args:
            args += ["--poll-interval", "0.05"]
        worker = WorkerProcess(
            args,
            env={**worker_env, **(env or {})},
            log_dir=tmp_path,
            worker_id=worker_id or f"e2e-{uuid.uuid4().hex[:8]}",
        )
        started.append(worker)
        return worker

    yield start
    # Before the database is flushed (transactional_db tears down after this fixture).
    for worker in started:
        worker.kill()
