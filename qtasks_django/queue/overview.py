"""Every queue in use, with its counts and pause: what ``qtasks_queues`` and the admin list.

A queue exists only as a column value, so "every queue" is every queue with a waiting or
running task, plus every paused one (a pause may come before the first task).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone

from ..models import TaskRecord
from ..status import TaskStatus
from .pauses import Pause, QueuePauses


@dataclass(frozen=True)
class QueueState:
    """One queue now: its task counts and, if it is paused, the pause."""

    queue: str
    waiting: int = 0
    """Tasks not started yet (``new``), due or not."""
    ready: int = 0
    """Of those, the ones due now (their eta has come): what workers would claim next, unless
    the queue is paused or a concurrency or rate limit holds them."""
    running: int = 0
    pause: Pause | None = None

    @property
    def paused(self) -> bool:
        return self.pause is not None


def queue_overview(using: str = "default", now: datetime | None = None) -> list[QueueState]:
    """Every queue with a waiting or running task, or paused, by name: two queries.

    The counts come from one ``GROUP BY queue`` over the ``new`` and ``process`` rows only
    (the status index finds them), so finished history costs nothing.
    """
    now = now or timezone.now()
    new = Q(status=TaskStatus.NEW)
    counted = (
        TaskRecord.objects.using(using)
        .filter(status__in=[TaskStatus.NEW, TaskStatus.PROCESS])
        .order_by()  # the model's ordering would join the GROUP BY
        .values("queue")
        .annotate(
            waiting=Count("pk", filter=new),
            ready=Count("pk", filter=new & Q(eta__lte=now)),
            running=Count("pk", filter=Q(status=TaskStatus.PROCESS)),
        )
    )
    counts: dict[str, tuple[int, int, int]] = {
        row["queue"]: (row["waiting"], row["ready"], row["running"]) for row in counted
    }
    pauses = {pause.queue: pause for pause in QueuePauses(using).paused()}
    return [
        QueueState(queue, *counts.get(queue, (0, 0, 0)), pause=pauses.get(queue))
        for queue in sorted(counts.keys() | pauses.keys())
    ]
