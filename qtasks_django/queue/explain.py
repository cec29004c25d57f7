"""Why a task is not running: every reason that holds it, read from the database now.

``app.explain(uuid)`` and the task's admin page show it. Each ``Reason`` has a stable
``code`` (for code that acts on it) and a sentence for people.
"""

from __future__ import annotations

import uuid as uuid_lib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from ..models import PausedQueue, RegisteredTask, TaskRecord, WorkerRecord
from ..serialization import parse_uuid
from ..status import FINAL_STATUSES, TaskStatus
from .gate_reads import recent_starts
from .presence import heartbeat_deadline, live_workers
from .store import MAX_CHAIN_HOPS

#: Running tasks named in a concurrency reason (the rest are counted).
SHOWN_HOLDERS = 10


@dataclass(frozen=True)
class Reason:
    """One thing that holds a task (or, for ``running``/``ended``/``ready``, what it is doing)."""

    code: str
    """eta, retry_backoff, paused, concurrency, rate, no_worker, unknown_task, stale_lease,
    running, ended, retried, ready."""
    message: str
    tasks: tuple[uuid_lib.UUID, ...] = ()
    """The tasks involved: those holding a concurrency gate, the retry that took over."""
    until: datetime | None = None
    """When this reason lapses by itself, where that is known."""


@dataclass(frozen=True)
class Explanation:
    """Why the task ``uuid`` is (not) running."""

    uuid: uuid_lib.UUID
    status: str
    reasons: list[Reason] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    @property
    def blocked(self) -> bool:
        """Whether something holds a waiting task back (not merely its turn in the queue)."""
        return self.status == TaskStatus.NEW and self.codes != ["ready"]

    def __str__(self) -> str:
        return "\n".join(f"- {r.message}" for r in self.reasons)


def explain(uuid: Any, *, using: str = "default") -> Explanation | None:
    """Return why the task ``uuid`` is not running, or ``None`` if there is no such task."""
    key = parse_uuid(uuid)
    manager = TaskRecord.objects.using(using)
    record = manager.filter(pk=key).first() if key is not None else None
    if record is None:
        return None
    now = timezone.now()
    if record.status == TaskStatus.RETRY:
        return Explanation(record.pk, str(record.status), [_retried(record, using)])
    if record.status in FINAL_STATUSES:
        message = f"It has ended: {record.get_status_display()}."
        return Explanation(record.pk, str(record.status), [Reason("ended", message)])
    if record.status == TaskStatus.PROCESS:
        return Explanation(record.pk, str(record.status), [_running(record, now, using)])
    reasons = [
        reason
        for check in (_eta, _paused, _concurrency, _rate, _workers)
        for reason in check(record, now, using)
    ]
    if not reasons:
        ahead = manager.ready([record.queue], now).filter(
            Q(priority__lt=record.priority) | Q(priority=record.priority, created_at__lt=record.created_at)
        )
        count = ahead.count()
        reasons.append(
            Reason(
                "ready",
                f"It is ready; {count} ready task{'s' if count != 1 else ''} of queue {record.queue!r} "
                "come before it, and it starts when a worker has a free slot.",
            )
        )
    return Explanation(record.pk, str(record.status), reasons)


def _retried(record: TaskRecord, using: str) -> Reason:
    manager = TaskRecord.objects.using(using)
    current = record
    for _hop in range(MAX_CHAIN_HOPS):
        child = current.retry_child_uuid and manager.filter(pk=current.retry_child_uuid).first()
        if not child:
            break
        current = child
    return Reason(
        "retried",
        f"This attempt failed and was retried; the current attempt is {current.pk} ({current.get_status_display()}).",
        tasks=(current.pk,),
    )


def _running(record: TaskRecord, now: datetime, using: str) -> Reason:
    worker = WorkerRecord.objects.using(using).filter(pk=record.worker_id).first()
    # The admin's rule for a gone worker (``presence.heartbeat_deadline``), so the page
    # never calls a worker alive in one place and gone in another.
    if worker is None or worker.stopped_at is not None or worker.heartbeat_at < heartbeat_deadline(now):
        seen = "has no record" if worker is None else f"last beat {_ago(worker.heartbeat_at, now)}"
        # The column is nullable (a running row written by hand has none): say so rather than fail.
        lapse = record.lease_expires_at
        at = f" (at {lapse:%Y-%m-%d %H:%M:%S %Z})" if lapse is not None else ""
        return Reason(
            "stale_lease",
            f"It is claimed by worker {record.worker_id!r}, which {seen}: the worker may be gone. When the "
            f"lease lapses{at} a rescue returns it to the queue.",
            until=record.lease_expires_at,
        )
    return Reason(
        "running", f"It is running on worker {record.worker_id!r} (since {_ago(record.started_at, now)})."
    )


def _eta(record: TaskRecord, now: datetime, using: str) -> list[Reason]:
    if record.eta <= now:
        return []
    when = f"{record.eta:%Y-%m-%d %H:%M:%S %Z} (in {_span((record.eta - now).total_seconds())})"
    if record.retry_parent_uuid is not None:
        return [
            Reason(
                "retry_backoff",
                f"Attempt {record.attempt} waits out its retry backoff until {when}.",
                until=record.eta,
            )
        ]
    return [Reason("eta", f"It is not due until {when}.", until=record.eta)]


def _paused(record: TaskRecord, now: datetime, using: str) -> list[Reason]:
    pause = PausedQueue.objects.using(using).filter(pk=record.queue).first()
    if pause is None:
        return []
    who = f" by {pause.paused_by}" if pause.paused_by else ""
    why = f": {pause.reason}" if pause.reason else ""
    return [
        Reason("paused", f"Its queue {record.queue!r} was paused{who} {_ago(pause.paused_at, now)}{why}.")
    ]


def _concurrency(record: TaskRecord, now: datetime, using: str) -> list[Reason]:
    key, limit = record.concurrency_key, record.concurrency_limit
    if key is None or limit is None:
        return []
    holders = TaskRecord.objects.using(using).filter(status=TaskStatus.PROCESS, concurrency_key=key)
    count = holders.count()
    if count < limit:
        return []
    shown = tuple(holders.order_by("started_at").values_list("pk", flat=True)[:SHOWN_HOLDERS])
    return [
        Reason(
            "concurrency",
            f"The concurrency limit of {limit} for key {key!r} is reached: {count} running "
            f"({', '.join(str(u) for u in shown)}{', ...' if count > len(shown) else ''}).",
            tasks=shown,
        )
    ]


def _rate(record: TaskRecord, now: datetime, using: str) -> list[Reason]:
    key, limit, period = record.rate_key, record.rate_limit, record.rate_period
    if key is None or limit is None or period is None:
        return []
    window = now - timedelta(seconds=period)
    starts = recent_starts(TaskRecord.objects.using(using), key, window, limit)
    if len(starts) < limit:
        return []
    opens = starts[limit - 1] + timedelta(seconds=period)
    return [
        Reason(
            "rate",
            f"The rate limit of {limit} per {_span(period)} for key {key!r} is used up; the next start is "
            f"allowed at {opens:%Y-%m-%d %H:%M:%S %Z} (in {_span((opens - now).total_seconds())}).",
            until=opens,
        )
    ]


def _workers(record: TaskRecord, now: datetime, using: str) -> list[Reason]:
    serving = [w for w in live_workers(now, using=using) if "*" in w.queues or record.queue in w.queues]
    if not serving:
        return [Reason("no_worker", f"No live worker serves queue {record.queue!r}.")]
    registered = RegisteredTask.objects.using(using).filter(pk=record.task_name).first()
    knowing = set() if registered is None else set(registered.workers.values_list("pk", flat=True))
    if not any(w.pk in knowing for w in serving):
        return [
            Reason(
                "unknown_task",
                f"No live worker serving queue {record.queue!r} has the task {record.task_name!r} registered "
                "(deploy its code to a worker of that queue).",
            )
        ]
    return []


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "an unknown time ago"
    return f"{_span((now - moment).total_seconds())} ago"


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}".replace(".0 ", " ")
    return f"{seconds:.1f} s".replace(".0 ", " ")
