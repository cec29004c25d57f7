"""The database queue: every state change of a task record happens here.

This module holds the callers' side (enqueue, read, cancel); the workers' side
(claims, leases, the end of a run) is ``worker_queue.WorkerQueue``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid as uuid_lib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connections, transaction
from django.utils import timezone

from . import notifiers, signals
from .conf import settings
from .context import current_task_uuid
from .exceptions import InvalidTaskArguments, QTasksError
from .new_rows import InsertPlan, NewRow
from .schemas import Task
from .serialization import json_text
from .status import TaskStatus
from .validation import resolve_schema, validate_call, validate_priority
from .worker_queue import WorkerQueue

if TYPE_CHECKING:
    from .registry import QueueTasks

logger = logging.getLogger(__name__)
DB = "default"
#: Rows per INSERT of a bulk enqueue where COPY is not available.
BULK_CHUNK = 1000


@dataclass(frozen=True)
class Call:
    """One validated-to-be enqueue: what ``add_task`` got, minus the waiting."""

    task_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    priority: int | None = None
    eta: dt.datetime | None = None
    countdown: float | None = None


class DatabaseQueue(WorkerQueue):
    """Enqueue, read and cancel task records; the worker side comes from ``WorkerQueue``."""

    def __init__(self, app: QueueTasks, using: str = DB) -> None:
        self.app = app
        self.using = using

    # -- enqueue ----------------------------------------------------------------

    def enqueue(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        priority: int | None,
        timeout: float | None,
        eta: dt.datetime | None = None,
        countdown: float | None = None,
        wait: bool = True,
    ) -> Task | None:
        """Validate, write the row in the caller's transaction; workers wake when it commits.

        With ``timeout`` (and ``wait``), block until the task ends; ``wait=False``
        only validates the timeout and leaves the waiting to the (async) caller.
        """
        if timeout is not None:
            self._check_can_wait(timeout)
        [row] = self.insert([self.build(Call(name, args, kwargs, priority, eta, countdown))])
        if timeout is None or not wait:
            return row.task()
        from .results import TaskResult

        return TaskResult(row.fields["uuid"], app=self.app).get(timeout)

    def enqueue_many(self, calls: Iterable[Call]) -> list[Task]:
        """Validate every call first, then write them all (nothing is written if one is invalid)."""
        rows = [self.build(call) for call in calls]
        return [row.task() for row in self.insert(rows)]

    def build(self, call: Call) -> NewRow:
        """Validate ``call`` and return its unwritten row (raises, writing nothing, on bad input)."""
        schema = resolve_schema(self.app.tasks, call.task_name)
        priority = schema.priority if call.priority is None else validate_priority(call.priority)
        args, kwargs = validate_call(schema, call.args, call.kwargs, max_bytes=settings.MAX_PAYLOAD_BYTES)
        now = timezone.now()
        fields = {
            "uuid": uuid_lib.uuid4(),
            "task_name": call.task_name,
            "queue": schema.queue or settings.DEFAULT_QUEUE,
            "priority": priority,
            "args": args.value,
            "kwargs": kwargs.value,
            "retry": schema.retry,
            "tags": schema.tags or [],
            "parent_uuid": current_task_uuid.get(),
            "created_at": now,
            "updated_at": now,
            "eta": start_time(now, call.eta, call.countdown),
        }
        return NewRow(fields, {"args": args.text, "kwargs": kwargs.text, "tags": tags_text(fields["tags"])})

    def insert(self, rows: Sequence[NewRow]) -> Sequence[NewRow]:
        """Write ``rows`` in the caller's transaction and wake workers when it commits."""
        if not rows:
            return rows
        notifier = self.notifier
        postgres = connections[self.using].vendor == "postgresql"
        # PostgreSQL's own notifier wakes workers from inside the statement that writes
        # the rows; any other (Redis) is told once the caller's transaction commits.
        in_statement = postgres and notifier.transactional
        if postgres:
            if len(rows) == 1:
                self._insert(rows[0], notify=in_statement)
            else:
                self._copy(rows, notify=in_statement)
        else:
            from .models import TaskRecord

            with transaction.atomic(using=self.using):
                TaskRecord.objects.using(self.using).bulk_create(
                    [row.record() for row in rows], batch_size=BULK_CHUNK
                )
        if not in_statement:
            for queue in {row.queue for row in rows}:
                notifier.send_on_commit(notifiers.ENQUEUED, queue)
        if signals.task_enqueued.has_listeners():
            for row in rows:
                record = row.record()
                signals.task_enqueued.send(sender=record.task_name, uuid=record.uuid, task=record)
        return rows

    def _insert(self, row: NewRow, *, notify: bool) -> None:
        # One statement, one round trip: the INSERT and (``notify``) the wake-up.
        # PostgreSQL delivers the NOTIFY only if the caller's transaction commits. The
        # statement never changes, so it is prepared once per connection and bound
        # server-side (Django's default cursor would quote 26 parameters into the text
        # each time).
        import psycopg

        connection = connections[self.using]
        plan = InsertPlan.for_connection(connection)
        values = plan.values(row)
        sql = plan.insert_and_notify_sql if notify else plan.insert_sql
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, [*values, notifiers.ENQUEUED] if notify else values, prepare=True)

    def _copy(self, rows: Sequence[NewRow], *, notify: bool) -> None:
        # Many rows: COPY streams them without a statement of tens of thousands of
        # placeholders to parse; the wake-ups (``notify``) follow in the same transaction.
        connection = connections[self.using]
        plan = InsertPlan.for_connection(connection)
        with transaction.atomic(using=self.using), connection.cursor() as cursor:
            with cursor.cursor.copy(plan.copy_sql) as copy:
                for row in rows:
                    copy.write_row(plan.values(row))
            if notify:
                queues = sorted({row.queue for row in rows})
                cursor.execute(
                    "SELECT pg_notify(%s, q) FROM unnest(%s::text[]) AS q", [notifiers.ENQUEUED, queues]
                )

    def _check_can_wait(self, timeout: Any) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise QTasksError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        if connections[self.using].in_atomic_block:
            raise QTasksError(
                "add_task(timeout=...) inside a transaction would wait for a task no worker can see "
                "before commit; enqueue inside the transaction and wait after it"
            )

    # -- read and cancel ----------------------------------------------------------

    def get(self, uuid: Any, with_progress: bool = True) -> Task | None:
        """Return a snapshot of the task, or ``None`` if there is none."""
        from .models import TaskRecord

        key = parse_uuid(uuid)
        if key is None:
            return None
        record = TaskRecord.objects.using(self.using).filter(pk=key).first()
        if record is None:
            return None
        progress = list(record.progress_items.values_list("value", flat=True)) if with_progress else []
        return Task.from_record(record, progress)

    def cancel(self, uuid: Any, reason: str = "") -> str | None:
        """Cancel a task (following its retry chain to the attempt that is current).

        Return ``"cancel"`` when it was waiting (it never starts), ``"process"`` when it
        is running (its worker stops it and it ends ``cancel``), ``None`` when there is
        no such task or it has already ended.
        """
        from .models import TaskRecord

        key = parse_uuid(uuid)
        manager = TaskRecord.objects.using(self.using)
        for _hop in range(100):  # a retry chain is short; the bound guards a corrupt loop
            row = manager.filter(pk=key).values("status", "retry_child_uuid", "task_name").first()
            if row is None or row["status"] != TaskStatus.RETRY or row["retry_child_uuid"] is None:
                break
            key = row["retry_child_uuid"]
        if row is None or row["status"] not in (TaskStatus.NEW, TaskStatus.PROCESS):
            return None
        reason = reason or "cancelled"
        now = timezone.now()
        with transaction.atomic(using=self.using):
            if manager.filter(pk=key, status=TaskStatus.NEW).update(
                status=TaskStatus.CANCEL, cancel_reason=reason, finished_at=now, updated_at=now
            ):
                self.notifier.send_on_commit(notifiers.FINISHED, str(key))
                status = TaskStatus.CANCEL
            elif manager.filter(pk=key, status=TaskStatus.PROCESS).update(
                cancel_requested_at=now, cancel_reason=reason, updated_at=now
            ):
                self.notifier.send_on_commit(notifiers.CANCEL, str(key))
                status = TaskStatus.PROCESS
            else:
                return None  # it ended in between
        if status == TaskStatus.CANCEL and signals.task_finished.has_listeners():
            signals.task_finished.send(
                sender=row["task_name"], uuid=key, status=status, returning=None, traceback=""
            )
        return str(status)


def start_time(now: dt.datetime, eta: Any, countdown: Any) -> dt.datetime:
    """Return when a task may start: ``eta``, ``now + countdown`` or ``now``."""
    if eta is not None and countdown is not None:
        raise InvalidTaskArguments("give eta or countdown, not both")
    if countdown is not None:
        if isinstance(countdown, bool) or not isinstance(countdown, int | float) or not countdown >= 0:
            raise InvalidTaskArguments(f"countdown must be a number of seconds >= 0, got {countdown!r}")
        return now + dt.timedelta(seconds=countdown)
    if eta is not None:
        if not isinstance(eta, dt.datetime):
            raise InvalidTaskArguments(f"eta must be a datetime, got {eta!r}")
        if timezone.is_naive(eta) != timezone.is_naive(now):
            wanted = "timezone-aware (USE_TZ is on)" if timezone.is_aware(now) else "naive (USE_TZ is off)"
            raise InvalidTaskArguments(f"eta must be {wanted}, got {eta.isoformat()}")
        return max(eta, now)  # a past eta runs at once
    return now


def tags_text(tags: list[str]) -> str:
    """Return a task's tags as JSON (no tags, the usual case, costs nothing)."""
    return json_text(tags) if tags else "[]"


def parse_uuid(value: Any) -> uuid_lib.UUID | None:
    if isinstance(value, uuid_lib.UUID):
        return value
    try:
        return uuid_lib.UUID(str(value))
    except ValueError:
        return None
