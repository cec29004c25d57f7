"""What the peers' harnesses share, inside a peer's virtualenv: where to connect, the start stamp.

Standard library only: it is imported by the peers' task modules in their own
virtualenvs. ``bench.peers.client`` sets the variables below for the driver, whose
worker subprocesses inherit them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol

DATABASE_URL = os.environ.get("PEERS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/qtasks_bench_peer")
"""The peer's own PostgreSQL database (Celery's results, Procrastinate's jobs)."""
REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/8")
"""The Redis database of the peers' brokers, flushed before each measure."""
STAMP_FILE = "PEERS_STAMP_FILE"
"""The variable naming the file the latency task appends its start time to."""
DRAIN_TASK = "noop"
STAMP_TASK = "stamp"


def record_start(i: int) -> float:
    """Append ``i`` and the time this task started to the stamp file; return that time.

    The time is taken first: writing the line is not part of the latency. One short
    ``write`` to a file opened for appending is atomic, so worker processes and threads
    can share the file.
    """
    now = time.time()
    with open(os.environ[STAMP_FILE], "a") as stamps:
        stamps.write(f"{i} {now!r}\n")
    return now


def read_stamps(path: Path) -> dict[int, float]:
    """Return call number → start time of every line in the stamp file (none when missing)."""
    if not path.exists():
        return {}
    stamps = {}
    for line in path.read_text().splitlines():
        number, _, started = line.partition(" ")
        if started:
            stamps[int(number)] = float(started)
    return stamps


class Harness(Protocol):
    """One peer as the driver sees it: its tasks, its store and its worker command lines."""

    name: str
    version: str
    has_bulk: bool
    poll_seconds: float
    """How often the driver asks ``finished`` during a drain."""

    def reset(self) -> None:
        """Empty the broker and the store (creating the store's tables when missing)."""

    def enqueue(self, task: str, i: int) -> None:
        """Enqueue ``task(i)`` with the peer's one-call API (``delay``, ``send``, ``defer``)."""

    def enqueue_many(self, task: str, numbers: list[int]) -> None:
        """Enqueue ``task(i)`` for each number in one call (only when ``has_bulk``)."""

    def fill(self, count: int) -> None:
        """Enqueue a backlog of ``count`` no-op tasks, the fastest way the peer offers."""

    def worker_commands(self, processes: int) -> list[list[str]]:
        """Return the command lines that run ``processes`` worker processes, default concurrency."""

    def finished(self, count: int) -> int:
        """Return how many of a ``count`` backlog have finished."""

    def busy_span(self, count: int) -> tuple[float, int] | None:
        """Return (seconds, tasks) from the store's own times, or None to time by polling."""
