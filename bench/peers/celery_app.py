"""Celery's harness (its virtualenv only): Redis broker, results in PostgreSQL.

Results go to the database result backend (SQLAlchemy with psycopg), one row per task in
``celery_taskmeta``: Celery keeps what qtasks_django keeps, a stored outcome per task. The
worker is Celery's own, with its defaults but the log level::

    celery -A bench.peers.celery_app worker --pool prefork --concurrency N --loglevel WARNING
"""

from __future__ import annotations

import sys
from pathlib import Path

import celery
import psycopg
import redis
from celery import Celery

from bench.peers import harness

app = Celery(
    "bench_peers",
    broker=harness.REDIS_URL,
    backend="db+" + harness.DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1),
)
app.conf.broker_connection_retry_on_startup = True  # the default to come; silences a warning


@app.task(name="noop")
def noop(i: int) -> int:
    return i


@app.task(name="stamp")
def stamp(i: int) -> float:
    return harness.record_start(i)


TASKS = {harness.DRAIN_TASK: noop, harness.STAMP_TASK: stamp}
BIN = Path(sys.executable).parent


class CeleryHarness:
    name = "celery"
    version = celery.__version__
    has_bulk = False
    poll_seconds = 0.1
    """The drain is timed from the stored results: poll rarely, to leave the CPU to the worker."""

    def __init__(self) -> None:
        self.connection: psycopg.Connection | None = None

    def store(self) -> psycopg.Connection:
        if self.connection is None:
            self.connection = psycopg.connect(harness.DATABASE_URL, autocommit=True)
        return self.connection

    def reset(self) -> None:
        redis.Redis.from_url(harness.REDIS_URL).flushdb()
        app.backend.ResultSession().close()  # the backend creates its tables when missing
        self.store().execute("TRUNCATE celery_taskmeta, celery_tasksetmeta")

    def enqueue(self, task: str, i: int) -> None:
        TASKS[task].delay(i)

    def enqueue_many(self, task: str, numbers: list[int]) -> None:
        raise NotImplementedError("Celery has no bulk enqueue (a group still sends one message per task)")

    def fill(self, count: int) -> None:
        for i in range(count):
            noop.delay(i)

    def worker_commands(self, processes: int) -> list[list[str]]:
        command = [str(BIN / "celery"), "-A", "bench.peers.celery_app", "worker", "--pool", "prefork"]
        return [[*command, "--concurrency", str(processes), "--loglevel", "WARNING"]]

    def finished(self, count: int) -> int:
        row = self.store().execute("SELECT count(*) FROM celery_taskmeta WHERE status = 'SUCCESS'").fetchone()
        return int(row[0]) if row else 0

    def busy_span(self, count: int) -> tuple[float, int] | None:
        """First stored result to last (``date_done``): the backlog less one task, over that time."""
        row = (
            self.store()
            .execute("SELECT extract(epoch FROM max(date_done) - min(date_done)) FROM celery_taskmeta")
            .fetchone()
        )
        return (float(row[0]), count - 1) if row and row[0] else None


HARNESS = CeleryHarness()
