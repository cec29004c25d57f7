"""The database queue: every state change of a task record happens here.

This module holds the callers' side (enqueue, read, cancel); the workers' side
(claims, leases, the end of a run) is ``worker_queue.WorkerQueue``.
"""

from __future__ import annotations

import datetime as dt
import json
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
from .schemas import Task
from .status import TaskStatus
from .validation import resolve_schema, validate_call, validate_priority
from .worker_queue import WorkerQueue

if TYPE_CHECKING:
    from .models import TaskRecord
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
        [record] = self.insert([self.build(Call(name, args, kwargs, priority, eta, countdown))])
        if timeout is None or not wait:
            return Task.from_record(record)
        from .results import TaskResult

        return TaskResult(record.uuid, app=self.app).get(timeout)

    def enqueue_many(self, calls: Iterable[Call]) -> list[Task]:
        """Validate every call first, then write them all (nothing is written if one is invalid)."""
        records = [self.build(call) for call in calls]
        return [Task.from_record(record) for record in self.insert(records)]

    def build(self, call: Call) -> TaskRecord:
        """Validate ``call`` and return its unsaved row (raises, writing nothing, on bad input)."""
        schema = resolve_schema(self.app.tasks, call.task_name)
        priority = schema.priority if call.priority is None else validate_priority(call.priority)
        stored_args, stored_kwargs = validate_call(
            schema, call.args, call.kwargs, max_bytes=settings.MAX_PAYLOAD_BYTES
        )
        now = timezone.now()
        return RowBuilder.get().build(
            uuid=uuid_lib.uuid4(),
            task_name=call.task_name,
            queue=schema.queue or settings.DEFAULT_QUEUE,
            priority=priority,
            args=stored_args,
            kwargs=stored_kwargs,
            retry=schema.retry,
            tags=schema.tags or [],
            parent_uuid=current_task_uuid.get(),
            created_at=now,
            updated_at=now,
            eta=start_time(now, call.eta, call.countdown),
        )

    def insert(self, records: Sequence[TaskRecord]) -> Sequence[TaskRecord]:
        """Write ``records`` in the caller's transaction and wake workers when it commits."""
        if not records:
            return records
        notifier = self.notifier
        if connections[self.using].vendor == "postgresql" and notifier.transactional:
            if len(records) == 1:
                self._insert_and_notify(records[0])
            else:
                self._copy_and_notify(records)
        else:
            from .models import TaskRecord

            with transaction.atomic(using=self.using):
                TaskRecord.objects.using(self.using).bulk_create(records, batch_size=BULK_CHUNK)
            for queue in {record.queue for record in records}:
                notifier.send_on_commit(notifiers.ENQUEUED, queue)
        if signals.task_enqueued.has_listeners():
            for record in records:
                signals.task_enqueued.send(sender=record.task_name, uuid=record.uuid, task=record)
        return records

    def _insert_and_notify(self, record: TaskRecord) -> None:
        # One statement, one round trip: the INSERT and the wake-up. PostgreSQL
        # delivers the NOTIFY only if the caller's transaction commits. The statement
        # never changes, so it is prepared once per connection and bound server-side
        # (Django's default cursor would quote 26 parameters into the text each time).
        import psycopg

        connection = connections[self.using]
        plan = InsertPlan.for_connection(connection)
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                plan.insert_and_notify_sql, [*plan.values(record), notifiers.ENQUEUED], prepare=True
            )

    def _copy_and_notify(self, records: Sequence[TaskRecord]) -> None:
        # Many rows: COPY streams them without a statement of tens of thousands of
        # placeholders to parse; the wake-ups follow in the same transaction.
        connection = connections[self.using]
        plan = InsertPlan.for_connection(connection)
        with transaction.atomic(using=self.using), connection.cursor() as cursor:
            with cursor.cursor.copy(plan.copy_sql) as copy:
                for record in records:
                    copy.write_row(plan.values(record))
            queues = sorted({record.queue for record in records})
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


class RowBuilder:
    """Makes unsaved task rows the quick way: positional values in the model's field order.

    ``TaskRecord(**fields)`` walks every field and pops its keyword: on a bulk enqueue
    that was a third of the time per task. Positional values take Django's fast path
    (the one ``from_db`` uses) and give the same instance; fields left out get their
    model defaults.
    """

    _instance: RowBuilder | None = None

    def __init__(self) -> None:
        from .models import TaskRecord

        self._model = TaskRecord
        self._defaults = [(f.attname, f.get_default) for f in TaskRecord._meta.concrete_fields]

    @classmethod
    def get(cls) -> RowBuilder:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def build(self, **values: Any) -> TaskRecord:
        row = self._model(
            *[values.pop(name) if name in values else default() for name, default in self._defaults]
        )
        if values:
            raise TypeError(f"TaskRecord has no fields {', '.join(sorted(values))}")
        return row


class InsertPlan:
    """How task rows are written on PostgreSQL: the statements and each column's value.

    Built once per process (the model does not change at run time): enqueue is the
    callers' hot path, and Django's general per-field ``get_db_prep_save`` and name
    quoting cost more than the INSERT's round trip on a fast server. Every value was
    built by ``DatabaseQueue.build`` (validated, JSON-normalised, aware datetimes), so
    JSON fields only need their text and the rest go to psycopg as they are.
    """

    _plans: dict[str, InsertPlan] = {}

    def __init__(self, connection: Any) -> None:
        from django.db.models import JSONField

        from .models import TaskRecord

        quote = connection.ops.quote_name
        fields = list(TaskRecord._meta.concrete_fields)
        table = quote(TaskRecord._meta.db_table)
        columns = ", ".join(quote(f.column) for f in fields)
        self._names = [f.attname for f in fields]
        self._json = [isinstance(f, JSONField) for f in fields]
        row = ", ".join("%s::jsonb" if is_json else "%s" for is_json in self._json)
        self.insert_and_notify_sql = (
            f"WITH ins AS (INSERT INTO {table} ({columns}) VALUES ({row}) RETURNING queue) "
            f"SELECT pg_notify(%s, q.queue) FROM (SELECT DISTINCT queue FROM ins) AS q"
        )
        self.copy_sql = f"COPY {table} ({columns}) FROM STDIN"

    @classmethod
    def for_connection(cls, connection: Any) -> InsertPlan:
        plan = cls._plans.get(connection.vendor)
        if plan is None:
            plan = cls._plans[connection.vendor] = cls(connection)
        return plan

    def values(self, record: TaskRecord) -> list[Any]:
        """Return the row's column values in the statements' order."""
        return [
            _json_text(value) if is_json else value
            for value, is_json in zip(
                [getattr(record, name) for name in self._names], self._json, strict=True
            )
        ]


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


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


def parse_uuid(value: Any) -> uuid_lib.UUID | None:
    if isinstance(value, uuid_lib.UUID):
        return value
    try:
        return uuid_lib.UUID(str(value))
    except ValueError:
        return None
