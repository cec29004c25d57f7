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
