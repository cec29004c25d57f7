"""Stopping running tasks that someone cancelled (``app.cancel`` or the admin)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid as uuid_lib
from typing import TYPE_CHECKING

from ..conf import settings

if TYPE_CHECKING:
    from ..queue.leases import Leases
    from ..tasks.run import TaskRun

logger = logging.getLogger("qtasks_django.worker")


class CancelWatch:
    """Ask each cancelled running task to stop; stop it by force after ``CANCEL_GRACE``.

    A task stops by itself at its next ``ctx.sleep`` or progress step. One that
    does neither (a tight loop, a blocking call) is stopped on the event loop:
    an async task is cancelled, a sync task's process is killed.
    """

    def __init__(self, leases: Leases, loop: asyncio.AbstractEventLoop) -> None:
        self.leases = leases
        self.loop = loop
        self.hint = threading.Event()  # a cancel notification arrived: check now
        self._deadlines: dict[uuid_lib.UUID, float] = {}
        self._lock = threading.Lock()

    def check(self, running: dict[uuid_lib.UUID, TaskRun]) -> None:
        """Find the cancelled ones among ``running`` and ask them to stop."""
        with self._lock:
            uuids = [key for key in running if key not in self._deadlines]
        for key, reason in self.leases.cancel_requests(uuids).items():
            run = running[key]
            with self._lock:
                self._deadlines[key] = time.monotonic() + settings.CANCEL_GRACE
            logger.info("task=%s uuid=%s cancel requested: %s", run.schema.name, key, reason)
            run.stop(reason)

    def force_overdue(self, running: dict[uuid_lib.UUID, TaskRun]) -> None:
        now = time.monotonic()
        with self._lock:
            overdue = [running[key] for key, due in self._deadlines.items() if due <= now and key in running]
        for run in overdue:
            if not run.forced_reason:
                logger.warning(
                    "task=%s uuid=%s did not stop within %.1fs of its cancel: stopping it",
                    run.schema.name,
                    run.uuid,
                    settings.CANCEL_GRACE,
                )
                self.loop.call_soon_threadsafe(run.force, run.ctx.stop_reason or "cancelled")

    def forget(self, key: uuid_lib.UUID) -> None:
        with self._lock:
            self._deadlines.pop(key, None)

    def next_deadline(self) -> float | None:
        with self._lock:
            return min(self._deadlines.values(), default=None)
