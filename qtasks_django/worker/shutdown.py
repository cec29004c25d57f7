"""A worker's last steps: give running tasks their grace period, then hand back what it holds."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .worker import Worker

logger = logging.getLogger("qtasks_django.worker")


def shut_down(worker: Worker) -> None:
    """Release tasks claimed ahead, wait for running ones (up to the timeout), release the rest."""
    _release_claimed_ahead(worker)
    if worker.running:
        logger.info(
            "stopping: waiting up to %.0fs for %d running task(s)",
            worker.shutdown_timeout,
            len(worker.running),
        )
    deadline = time.monotonic() + worker.shutdown_timeout
    while worker.running and not worker.force.is_set() and time.monotonic() < deadline:
        worker.wakeup.wait(0.1)
        worker.wakeup.clear()
    _release_claimed_ahead(worker)  # a slot may have put one back meanwhile
    _release_leftovers(worker)
    worker.guarded(worker.liveness.mark_stopped, None)
    worker.stop_loop()
    worker.runner.close()


def _release_claimed_ahead(worker: Worker) -> None:
    # Claimed but never started: back to the queue at once, not after the grace period.
    records = worker.ahead.take_all()
    if records:
        worker.guarded(lambda: worker.leases.release(worker.id, [r.uuid for r in records]), 0)


def _release_leftovers(worker: Worker) -> None:
    uuids = [*worker.running.abandon(), *worker.runner.unwritten()]
    if uuids:
        released = worker.guarded(lambda: worker.leases.release(worker.id, uuids), 0)
        logger.warning("released %d unfinished task(s) back to the queue", released)
