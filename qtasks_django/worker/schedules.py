"""The worker's schedule clock: fire due schedules from the claim loop, sleep until the next."""

from __future__ import annotations

import logging
import threading
import time

from django.utils import timezone

from ..queue.outages import UNAVAILABLE
from ..schedules.scheduler import Scheduler

logger = logging.getLogger("qtasks_django.schedules")

#: With notifications, a change reaches the worker at once; this re-read only covers a lost one.
REFRESH_WITH_NOTIFICATIONS = 30.0


class ScheduleClock:
    """Fire what is due when its time comes, a change is announced (``hint``), or a refresh is due.

    Between those the worker sleeps: ``next_deadline`` joins the claim loop's wait, so an
    idle worker wakes for the next firing and for nothing else.
    """

    def __init__(self, scheduler: Scheduler, *, refresh: float) -> None:
        self.scheduler = scheduler
        self.refresh = refresh
        self.hint = threading.Event()
        self._next: float | None = None
        self._refresh_at = 0.0

    def start(self) -> None:
        """Write the declared schedules (every worker does: it is idempotent)."""
        try:
            self.scheduler.sync()
        except UNAVAILABLE:
            raise  # the worker waits the outage out and calls again
        except Exception:
            # A schedule that cannot be synced must not keep the worker from its tasks;
            # the rows already in the database still fire.
            logger.exception("syncing the declared schedules failed; firing those already stored")

    def tick(self) -> None:
        now = time.monotonic()
        if not (
            self.hint.is_set() or now >= self._refresh_at or (self._next is not None and now >= self._next)
        ):
            return
        self.hint.clear()
        self._refresh_at = now + self.refresh
        try:
            upcoming = self.scheduler.fire_due()
        except Exception:
            # Schedules must never stop the worker from running tasks: try again at the
            # next refresh (a database outage is waited out by the claim loop itself).
            logger.exception("firing schedules failed; trying again in %.0fs", self.refresh)
            self._next = None
            return
        if upcoming is None:
            self._next = None
        else:
            self._next = time.monotonic() + max(0.0, (upcoming - timezone.now()).total_seconds())

    def next_deadline(self) -> float | None:
        """The monotonic time of the next firing (``None``: none is scheduled), or of the next refresh."""
        return self._refresh_at if self._next is None else min(self._next, self._refresh_at)
