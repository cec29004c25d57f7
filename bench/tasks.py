"""No-op tasks the benchmark runs: what is left is qtasks_django's own cost per task."""

from __future__ import annotations

import time

from qtasks_django import shared_task


@shared_task
def noop(i: int) -> int:
    """Return the argument (a sync task)."""
    return i


@shared_task
async def anoop(i: int) -> int:
    """Return the argument (an async task)."""
    return i


@shared_task
def stamp() -> float:
    """Return the wall-clock time at which the task started (for enqueue→start latency)."""
    return time.time()


@shared_task
async def astamp() -> float:
    """The async twin of :func:`stamp`."""
    return time.time()


# Flow control (bench.plan.FLOW_VARIANTS): the same no-ops behind each kind of limit, set so
# that no limit needs to hold a task back: what a drain of them loses against ``noop`` is the
# limits' own cost. The concurrency limit is the worker's default concurrency; the bench
# writes the run's concurrency into the rows (``measures.prepare_backlog``): the gate admits
# as many as the worker has slots, and counts as running the tasks whose end is not written yet.


def account_of(i: int) -> str:
    """Spread the tasks over 100 concurrency keys (as tasks per customer account would be)."""
    return f"acct:{i % 100}"


@shared_task(concurrency_limit=4)
def noop_concurrency(i: int) -> int:
    return i


@shared_task(concurrency_limit=4)
async def anoop_concurrency(i: int) -> int:
    return i


@shared_task(concurrency_key=account_of, concurrency_limit=1)
def noop_keyed(i: int) -> int:
    return i


@shared_task(concurrency_key=account_of, concurrency_limit=1)
async def anoop_keyed(i: int) -> int:
    return i


@shared_task(rate_limit="1000000/s")
def noop_rate(i: int) -> int:
    return i


@shared_task(rate_limit="1000000/s")
async def anoop_rate(i: int) -> int:
    return i


@shared_task(unique=True)
def noop_unique(i: int) -> int:
    return i


@shared_task(unique=True)
async def anoop_unique(i: int) -> int:
    return i
