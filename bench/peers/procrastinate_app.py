"""Procrastinate's harness (its virtualenv only): PostgreSQL only.

A job keeps its status (``succeeded``) in ``procrastinate_jobs``, not a return value, and
every change of status is an event with its time in ``procrastinate_events``: the drain
is timed from the first ``started`` to the last ``succeeded``. The worker is
Procrastinate's own, one process per command, each with its default concurrency (1)::

    procrastinate --app bench.peers.procrastinate_app.app worker     (started N times)
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

import procrastinate
import psycopg
from procrastinate.schema import SchemaManager

from bench.peers import harness

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=harness.DATABASE_URL))


@app.task(name="noop")
def noop(i: int) -> int:
    return i


@app.task(name="stamp")
def stamp(i: int) -> float:
    return harness.record_start(i)


TASKS = {harness.DRAIN_TASK: noop, harness.STAMP_TASK: stamp}
BIN = Path(sys.executable).parent
TABLES = "procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers, procrastinate_workers"
FILL_CHUNK = 1000


class ProcrastinateHarness:
    name = "procrastinate"
    version = version("procrastinate")
    has_bulk = True
    poll_seconds = 0.1
    """The drain is timed from the job events: poll rarely, to leave the CPU to the worker."""

    def __init__(self) -> None:
        self.connection: psycopg.Connection | None = None
        self.opened = False

    def store(self) -> psycopg.Connection:
        if self.connection is None:
            self.connection = psycopg.connect(harness.DATABASE_URL, autocommit=True)
        return self.connection

    def reset(self) -> None:
        row = self.store().execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if row and row[0]:
            self.store().execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        else:
            self.store().execute(SchemaManager.get_schema())

    def client(self) -> procrastinate.App:
        """The app, opened for deferring from synchronous code (as a Django view would)."""
        if not self.opened:
            app.open()
            self.opened = True
        return app

    def enqueue(self, task: str, i: int) -> None:
        self.client()
        TASKS[task].defer(i=i)

    def enqueue_many(self, task: str, numbers: list[int]) -> None:
        self.client()
        TASKS[task].batch_defer(*({"i": i} for i in numbers))

    def fill(self, count: int) -> None:
        for first in range(0, count, FILL_CHUNK):
            self.enqueue_many(harness.DRAIN_TASK, list(range(first, min(first + FILL_CHUNK, count))))

    def worker_commands(self, processes: int) -> list[list[str]]:
        command = [str(BIN / "procrastinate"), "--app", "bench.peers.procrastinate_app.app", "worker"]
        return [command] * processes

    def finished(self, count: int) -> int:
        row = (
            self.store()
            .execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
            .fetchone()
        )
        return int(row[0]) if row else 0

    def busy_span(self, count: int) -> tuple[float, int] | None:
        """First job started to last job succeeded, from the events' times (the whole backlog)."""
        row = (
            self.store()
            .execute(
                "SELECT extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded') "
                "- min(at) FILTER (WHERE type = 'started')) FROM procrastinate_events"
            )
            .fetchone()
        )
        return (float(row[0]), count) if row and row[0] else None


HARNESS = ProcrastinateHarness()
