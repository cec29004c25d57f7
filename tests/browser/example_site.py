"""The example project run as its users run it: ``migrate``, ``runserver`` and ``qtasks_worker``.

The demo app registers task names (``add``...) that the test suite's own tasks use too, so
it cannot be installed in ``tests.settings``. Instead, the browser tests start the example
project in subprocesses with ``example_project.settings`` and a database of their own (a
temporary SQLite file, or a PostgreSQL database named after the suite's), and drive its
pages over HTTP. Every process started here is stopped by :meth:`ExampleSite.stop`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 40.0
"""Seconds for ``migrate`` and for the server to answer (a busy 2-core CI machine is slow)."""
STOP_TIMEOUT = 15.0
# What the test run sets for the suite's own settings; the example project must not see it.
SUITE_ONLY_VARIABLES = ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "QTASKS_TEST_NOTIFIER")


class ExampleSiteError(RuntimeError):
    """The example project did not start or stop as it should (the message holds its logs)."""


@dataclass
class ExampleSite:
    """A running example project: its URL, environment and processes."""

    database_url: str
    redis_url: str
    log_dir: Path
    url: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment of every example subprocess: the example settings, nothing of the suite's."""
        env = {k: v for k, v in os.environ.items() if k not in SUITE_ONLY_VARIABLES}
        env.update(
            DJANGO_SETTINGS_MODULE="example_project.settings",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            DEBUG="true",
            SECRET_KEY="example-project-browser-tests",
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self) -> None:
        """Migrate, then start the worker and the development server on a free port."""
        self.manage("migrate", "--noinput", "-v", "0")
        # A short poll interval: on SQLite the worker finds new tasks by polling.
        self.spawn("worker", "qtasks_worker", "--poll-interval", "0.1")
        port = free_port()
        self.spawn("server", "runserver", "--noreload", f"127.0.0.1:{port}")
        self.url = f"http://127.0.0.1:{port}"
        self.wait_until_serving()

    def manage(self, *args: str) -> None:
        """Run ``manage.py ARGS`` to its end; raise with its output if it fails."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise ExampleSiteError(f"manage.py {' '.join(args)} exited {done.returncode}:\n{output}")

    def spawn(self, name: str, *args: str) -> None:
        with self.log_path(name).open("wb") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "manage.py", *args],
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for pytest does not reach them
            )

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def logs(self) -> str:
        """Every process's output, for a failure message."""
        parts = []
        for name in self.processes:
            text = self.log_path(name).read_text(errors="replace")
            parts.append(f"--- {name} (last 60 lines) ---\n" + "\n".join(text.splitlines()[-60:]))
        return "\n".join(parts)

    def check_alive(self) -> None:
        """Raise if the server or the worker has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise ExampleSiteError(f"the {name} exited with {process.returncode}\n{self.logs()}")

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self.check_alive()
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ExampleSiteError(f"{self.url}/ did not answer within {START_TIMEOUT}s\n{self.logs()}")
            time.sleep(0.1)

    def get_json(self, path: str) -> Any:
        """GET ``path`` on the site and decode its JSON body."""
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        """SIGTERM every process (the worker shuts down gracefully); kill what outlives the wait."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.processes.values():
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sibling_postgres_url(suite_url: str, suffix: str = "_example") -> str:
    """The suite's PostgreSQL URL with ``suffix`` appended to its database name.

    Two test runs with different ``DATABASE_URL`` names (scripts/test.sh's
    ``QTASKS_TEST_PG_DB``) therefore never share the example's database.
    """
    parts = urlsplit(suite_url)
    name = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path=f"/{name}{suffix}"))


def recreate_postgres_database(url: str) -> None:
    """Drop the database named in ``url`` if it exists, and create it empty."""
    _on_maintenance_database(url, "DROP DATABASE IF EXISTS {name} WITH (FORCE)", "CREATE DATABASE {name}")


def drop_postgres_database(url: str) -> None:
    _on_maintenance_database(url, "DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _on_maintenance_database(url: str, *statements: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        for statement in statements:
            connection.execute(sql.SQL(statement).format(name=sql.Identifier(name)))
