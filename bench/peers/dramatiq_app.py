"""Dramatiq's harness (its virtualenv only): Redis broker, no result backend.

Dramatiq stores no result here (its results middleware is optional and off by default),
so its drain is timed from the broker: the Redis broker keeps each message in the hash
``dramatiq:default.msgs`` until the worker acknowledges it, after the actor has run. The
worker is Dramatiq's own, with its defaults (8 threads per process)::

    dramatiq bench.peers.dramatiq_app --processes N
"""

from __future__ import annotations

import sys
from pathlib import Path

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from bench.peers import harness

broker = RedisBroker(url=harness.REDIS_URL)
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="noop")
def noop(i: int) -> int:
    return i


@dramatiq.actor(actor_name="stamp")
def stamp(i: int) -> float:
    return harness.record_start(i)


TASKS = {harness.DRAIN_TASK: noop, harness.STAMP_TASK: stamp}
BIN = Path(sys.executable).parent
UNACKED = "dramatiq:default.msgs"
"""Messages enqueued and not yet acknowledged (their actor has not finished)."""


class DramatiqHarness:
    name = "dramatiq"
    version = dramatiq.__version__
    has_bulk = False
    poll_seconds = 0.005
    """Nothing records when a task finished: the drain is timed by polling the broker, closely."""

    def __init__(self) -> None:
        self.redis = redis.Redis.from_url(harness.REDIS_URL)

    def reset(self) -> None:
        self.redis.flushdb()

    def enqueue(self, task: str, i: int) -> None:
        TASKS[task].send(i)

    def enqueue_many(self, task: str, numbers: list[int]) -> None:
        raise NotImplementedError("Dramatiq has no bulk enqueue (a group sends one message per task)")

    def fill(self, count: int) -> None:
        for i in range(count):
            noop.send(i)

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [[str(BIN / "dramatiq"), "bench.peers.dramatiq_app", "--processes", str(processes)]]

    def finished(self, count: int) -> int:
        return count - int(self.redis.hlen(UNACKED))

    def busy_span(self, count: int) -> tuple[float, int] | None:
        return None


HARNESS = DramatiqHarness()
