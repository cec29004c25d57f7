"""Paused queues: a row in ``PausedQueue`` per queue no worker claims from.

The claims read the table in the same statement that picks rows, so a pause holds from
the next claim of every worker, on every machine, and survives restarts. Tasks already
running finish. Resuming deletes the row and wakes the workers at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import notifiers
from ..exceptions import QTasksError
from ..limits import queue_name_problem, unstorable_text
from ..models import PausedQueue


@dataclass(frozen=True)
class Pause:
    """A paused queue: since when, by whom, and why."""

    queue: str
    paused_at: datetime
    paused_by: str = ""
    reason: str = ""


class QueuePauses:
    """Pause, resume and list paused queues in the database ``using``."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def pause(self, queue: str, *, reason: str = "", by: str = "") -> bool:
        """Pause ``queue``; ``False`` if it already was (its first pause is kept)."""
        check_queue(queue)
        for label, text in (("reason", reason), ("by", by)):
            problem = unstorable_text(str(text))
            if problem:
                raise QTasksError(f"the pause's {label} {problem}")
        try:
            with transaction.atomic(using=self.using):
                PausedQueue.objects.using(self.using).create(
                    queue=queue,
                    paused_at=timezone.now(),
                    reason=str(reason)[:10_000],
                    paused_by=str(by)[:255],
                )
        except IntegrityError:
            return False
        return True

    def resume(self, queue: str) -> bool:
        """Resume ``queue`` and wake the workers; ``False`` if it was not paused."""
        check_queue(queue)
        with transaction.atomic(using=self.using):
            deleted, _ = PausedQueue.objects.using(self.using).filter(queue=queue).delete()
            if deleted:
                notifiers.get_notifier(self.using).send_on_commit(notifiers.ENQUEUED, queue)
        return bool(deleted)

    def paused(self) -> list[Pause]:
        """Every paused queue, by name."""
        rows = PausedQueue.objects.using(self.using).order_by("queue")
        return [Pause(r.queue, r.paused_at, r.paused_by, r.reason) for r in rows]

    def is_paused(self, queue: str) -> Pause | None:
        row = PausedQueue.objects.using(self.using).filter(queue=queue).first()
        return None if row is None else Pause(row.queue, row.paused_at, row.paused_by, row.reason)


def check_queue(queue: object) -> None:
    """Refuse what no queue column holds, naming the problem."""
    problem = queue_name_problem(queue)
    if problem:
        raise QTasksError(problem)
