"""The end of a run, and its progress on the way: writes fenced by the run's lease token.

A worker whose lease was taken away (it was rescued elsewhere, or released) writes
nothing: every statement here checks ``status = process`` and the lease token in the
row it changes.
"""

from __future__ import annotations

import contextlib
import uuid as uuid_lib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from .. import notifiers
from ..exceptions import LeaseLost
from ..models import TaskLog, TaskProgress, TaskRecord
from ..serialization import json_text, storable_text
from ..status import TaskStatus
from . import unique
from .cursors import kept_cursor


@dataclass(frozen=True, kw_only=True, slots=True)
class Finish:
    """The end of one run, as ``Finishes.finish_many`` writes it (no log lines, no retry)."""

    uuid: uuid_lib.UUID
    lease_token: uuid_lib.UUID | None
    status: str
    returning: Any = None
    traceback: str = ""
    cancel_reason: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


#: Text a run produces (its exception, its cancel reason): NUL or a lone surrogate in it is
#: escaped (``storable_text``), so the task's own error is kept instead of lost to a DataError.
TEXT_FIELDS = ("traceback", "cancel_reason")


class Finishes:
    """Write the ends of runs and their progress items in the database ``using``."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def finish(self, record: TaskRecord, *, logs: list[dict[str, Any]] | None = None, **fields: Any) -> bool:
        """Write the end of a run if this worker still holds the lease; return whether it did."""
        now = timezone.now()
        fields = _storable(fields)
        # A transaction only when there is more than the fenced UPDATE to write;
        # alone, the UPDATE is atomic and the wake-up may follow it.
        with transaction.atomic(using=self.using) if logs else contextlib.nullcontext():
            updated = (
                TaskRecord.objects.using(self.using)
                .filter(pk=record.pk, status=TaskStatus.PROCESS, lease_token=record.lease_token)
                .update(
                    **{
                        "finished_at": now,
                        "updated_at": now,
                        "lease_token": None,
                        "lease_expires_at": None,
                        **fields,
                    }
                )
            )
            if updated and logs:
                TaskLog.objects.using(self.using).bulk_create(
                    TaskLog(task_id=record.pk, **_storable(line)) for line in logs
                )
            if updated:
                notifiers.get_notifier(self.using).send_on_commit(notifiers.FINISHED, str(record.pk))
        return bool(updated)

    def retry(
        self,
        record: TaskRecord,
        *,
        delay: float,
        attempts_left: int,
        traceback: str,
        logs: list[dict[str, Any]],
        times: dict[str, Any] | None = None,
    ) -> uuid_lib.UUID | None:
        """Mark the failed attempt ``retry`` and enqueue its successor; return the successor's uuid."""
        now = timezone.now()
        child_uuid = uuid_lib.uuid4()
        with transaction.atomic(using=self.using):
            if not self.finish(
                record,
                logs=logs,
                status=TaskStatus.RETRY,
                traceback=traceback,
                retry_child_uuid=child_uuid,
                **(times or {}),
            ):
                return None
            _child, holder = unique.create(
                using=self.using,
                uuid=child_uuid,
                task_name=record.task_name,
                queue=record.queue,
                priority=record.priority,
                args=record.args,
                kwargs=record.kwargs,
                tags=record.tags,
                retry=attempts_left,
                attempt=record.attempt + 1,
                retry_parent_uuid=record.pk,
                parent_uuid=record.parent_uuid,
                schedule_id=record.schedule_id,  # the firing time stays the first attempt's
                created_at=now,
                updated_at=now,
                eta=now + timedelta(seconds=delay),
                **{name: getattr(record, name) for name in unique.FLOW_FIELDS},
            )
            if holder is not None:
                # A task with this unique key was enqueued while this attempt ran (the key
                # was free: ``unique_while="waiting"``). It is the retry: the chain leads to it.
                TaskRecord.objects.using(self.using).filter(pk=record.pk).update(retry_child_uuid=holder.pk)
                return holder.pk
            notifiers.get_notifier(self.using).send_on_commit(notifiers.ENQUEUED, record.queue)
        return child_uuid

    def add_progress(self, record: TaskRecord, seq: int, value: Any) -> None:
        """Store a progress item, fenced like ``finish``: raise ``LeaseLost`` if the lease is gone.

        One statement: the item is inserted only while this run still holds the task,
        so a worker that was paused past its lease cannot write into the rerun.
        """
        connection = connections[self.using]
        quote = connection.ops.quote_name
        progress, task = TaskProgress._meta, TaskRecord._meta
        sql = (
            f"INSERT INTO {quote(progress.db_table)} ({quote('task_id')}, {quote('seq')}, {quote('value')}, "
            f"{quote('created_at')}) SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM {quote(task.db_table)} "
            f"WHERE {quote('uuid')} = %s AND {quote('status')} = %s AND {quote('lease_token')} = %s)"
        )
        key = task.get_field("uuid").get_db_prep_value(record.pk, connection)
        params = [
            key,
            seq,
            progress.get_field("value").get_db_prep_save(value, connection),
            task.get_field("created_at").get_db_prep_value(timezone.now(), connection),
            key,
            TaskStatus.PROCESS,
            task.get_field("lease_token").get_db_prep_value(record.lease_token, connection),
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.rowcount == 0:
                raise LeaseLost(
                    f"task {record.pk} is no longer held by this run (rescued elsewhere or released); "
                    "progress item not written"
                )

    def finish_many(self, finishes: Sequence[Finish]) -> set[uuid_lib.UUID]:
        """Write plain ends of runs, each fenced by its lease token; return the uuids written."""
        connection = connections[self.using]
        if connection.vendor == "postgresql":
            return self._finish_many_postgres(finishes)
        with transaction.atomic(using=self.using):
            return {
                end.uuid
                for end in finishes
                if self.finish(
                    TaskRecord(uuid=end.uuid, lease_token=end.lease_token),
                    status=end.status,
                    returning=end.returning,
                    traceback=end.traceback,
                    cancel_reason=end.cancel_reason,
                    **_times(end),
                )
            }

    def _finish_many_postgres(self, finishes: Sequence[Finish]) -> set[uuid_lib.UUID]:
        # The rows come as one array per column, so the text is the same whatever the
        # batch size: it is prepared once per connection, not planned for every batch
        # (0.6 ms each). The "uuid = ANY" condition repeats the join's, so that the plan
        # looks the rows up by primary key even when the table's statistics are stale;
        # without it the planner could walk every running row for each batch.

        connection = connections[self.using]
        now = timezone.now()
        columns = {
            "uuid": ("uuid", [end.uuid for end in finishes]),
            "token": ("uuid", [end.lease_token for end in finishes]),
            "status": ("text", [str(end.status) for end in finishes]),
            "returning": ("jsonb", [json_text(end.returning) for end in finishes]),
            "traceback": ("text", [storable_text(end.traceback) for end in finishes]),
            "cancel_reason": ("text", [storable_text(end.cancel_reason) for end in finishes]),
            "started_at": ("timestamptz", [end.started_at for end in finishes]),
            "finished_at": ("timestamptz", [end.finished_at or now for end in finishes]),
        }
        table = connection.ops.quote_name(TaskRecord._meta.db_table)
        notifier = notifiers.get_notifier(self.using)
        # PostgreSQL's own notifier sends the wake-ups in the same statement.
        wake = 'pg_notify(%s, upd."uuid"::text)' if notifier.transactional else "%s"
        names = ", ".join(f'"{name}"' for name in columns)
        arrays = ", ".join(f"%s::{kind}[]" for kind, _ in columns.values())
        # "returning" is a reserved word: every identifier is quoted.
        sql = (
            f"WITH v ({names}) AS (SELECT * FROM unnest({arrays})), "
            f'upd AS (UPDATE {table} AS t SET "status" = v."status", "returning" = v."returning", '
            f'"traceback" = v."traceback", "cancel_reason" = v."cancel_reason", "finished_at" = v."finished_at", '
            f'"started_at" = COALESCE(v."started_at", t."started_at"), '
            f'"updated_at" = %s, "lease_token" = NULL, "lease_expires_at" = NULL FROM v '
            f'WHERE t."uuid" = v."uuid" AND t."uuid" = ANY(%s) AND t."status" = %s AND t."lease_token" = v."token" '
            f'RETURNING t."uuid") '
            f'SELECT upd."uuid", {wake} FROM upd'
        )
        params = [values for _, values in columns.values()]
        with connection.wrap_database_errors:
            cursor = kept_cursor(connection)
            cursor.execute(
                sql, [*params, now, params[0], str(TaskStatus.PROCESS), notifiers.FINISHED], prepare=True
            )
            written = {row[0] for row in cursor.fetchall()}
        if not notifier.transactional:
            for uuid in written:
                notifier.send(notifiers.FINISHED, str(uuid))
        return written


def _storable(fields: dict[str, Any]) -> dict[str, Any]:
    # Log lines are text too: their message and logger name.
    return {
        name: storable_text(value)[: (255 if name == "logger" else None)]
        if isinstance(value, str) and name in (*TEXT_FIELDS, "message", "logger")
        else value
        for name, value in fields.items()
    }


def _times(end: Finish) -> dict[str, Any]:
    return {
        name: value
        for name, value in (("started_at", end.started_at), ("finished_at", end.finished_at))
        if value
    }
