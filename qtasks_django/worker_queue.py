"""The worker's side of the database queue: claims, leases and the end of each run.

Claims are short transactions (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and no
user code ever runs inside one. Writes that end a run are fenced by the lease
token, so a worker whose lease was taken away writes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import uuid as uuid_lib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from . import notifiers
from .conf import settings
from .exceptions import LeaseLost
from .status import TaskStatus

if TYPE_CHECKING:
    from .models import TaskRecord

logger = logging.getLogger(__name__)


class WorkerQueue:
    """Claim, finish, retry, release and rescue task records (what workers do)."""

    using: str

    @property
    def notifier(self) -> notifiers.BaseNotifier:
        return notifiers.get_notifier(self.using)

    def claim(
        self, worker_id: str, queues: list[str] | None, limit: int, *, suspects: bool = False
    ) -> list[TaskRecord]:
        """Lock up to ``limit`` ready tasks, mark them ``process`` under a fresh lease, return them.

        Tasks that were rescued (their worker died while running them) are *suspects*:
        they may be the ones that killed it. They are claimed only with ``suspects=True``,
        one at a time, by a worker that runs nothing else, so a poison task never takes
        innocent tasks down with it.
        """
        if limit <= 0:
            return []
        if suspects:
            limit = 1
        now = timezone.now()
        lease = {
            "status": TaskStatus.PROCESS,
            "worker_id": worker_id,
            "lease_token": uuid_lib.uuid4(),
            "lease_expires_at": now + timedelta(seconds=settings.LEASE_TIMEOUT),
            "started_at": now,
            "updated_at": now,
        }
        if connections[self.using].vendor == "postgresql":
            claimed = self._claim_postgres(queues, limit, now, lease, suspects)
        else:
            claimed = self._claim_portable(queues, limit, now, lease, suspects)
        claimed.sort(key=lambda r: (r.priority, r.created_at))
        return claimed

    def _claim_postgres(
        self, queues: list[str] | None, limit: int, now: Any, lease: dict[str, Any], suspects: bool
    ) -> list[TaskRecord]:
        # One statement, one round trip: the sub-select locks the rows it picks and
        # skips rows other workers hold; the UPDATE commits with it (autocommit). The
        # text is constant, so it is prepared once per connection and bound server-side:
        # no planning and no client-side quoting on the worker's hottest path.
        import psycopg

        from .models import TaskRecord

        connection = connections[self.using]
        quote = connection.ops.quote_name
        meta = TaskRecord._meta
        fields = list(meta.concrete_fields)
        table = quote(meta.db_table)
        queue_filter = "AND queue = ANY(%s)" if queues else ""
        sql = (
            f"UPDATE {table} SET status = %s, worker_id = %s, lease_token = %s, lease_expires_at = %s, "
            f"started_at = %s, updated_at = %s WHERE uuid IN ("
            f"SELECT uuid FROM {table} WHERE status = 'new' AND eta <= %s {queue_filter} "
            f"AND rescues {'>' if suspects else '='} 0 "
            f"ORDER BY priority, created_at LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"RETURNING {', '.join(quote(f.column) for f in fields)}"
        )
        params = [*lease.values(), now, *([list(queues)] if queues else []), limit]
        connection.ensure_connection()
        raw = connection.connection
        with connection.wrap_database_errors, psycopg.Cursor(raw) as setting, psycopg.Cursor(raw) as cursor:
            # Right after a burst of enqueues the table's statistics still say "almost
            # no ready rows", and the planner then fetches every ready row and sorts them
            # on each claim. Without sorts the only plan left walks the small ready index
            # in run order and stops at the limit. The three statements go in one round
            # trip, and the setting lasts for this claim only.
            with raw.pipeline():
                setting.execute("SET enable_sort = off")
                cursor.execute(sql, params, prepare=True)
                setting.execute("RESET enable_sort")
            rows = cursor.fetchall()
        converters = [getattr(f, "from_db_value", None) for f in fields]
        names = [f.attname for f in fields]
        return [
            TaskRecord.from_db(
                self.using,
                names,
                [
                    value if convert is None else convert(value, None, connection)
                    for value, convert in zip(row, converters, strict=False)
                ],
            )
            for row in rows
        ]

    def _claim_portable(
        self, queues: list[str] | None, limit: int, now: Any, lease: dict[str, Any], suspects: bool
    ) -> list[TaskRecord]:
        from .models import TaskRecord

        manager = TaskRecord.objects.using(self.using)
        with transaction.atomic(using=self.using):
            ready = manager.ready(queues, now).select_for_update(skip_locked=True)
            ready = ready.filter(rescues__gt=0) if suspects else ready.filter(rescues=0)
            ids = list(ready.values_list("pk", flat=True)[:limit])
            if not ids:
                return []
            # ``status=new`` again: SQLite has no row locks, so this is what stops
            # two workers from taking the same row there.
            manager.filter(pk__in=ids, status=TaskStatus.NEW).update(**lease)
            return list(manager.filter(pk__in=ids, lease_token=lease["lease_token"]))

    def finish(self, record: TaskRecord, *, logs: list[dict[str, Any]] | None = None, **fields: Any) -> bool:
        """Write the end of a run if this worker still holds the lease; return whether it did."""
        from .models import TaskLog, TaskRecord

        now = timezone.now()
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
                    TaskLog(task_id=record.pk, **line) for line in logs
                )
            if updated:
                self.notifier.send_on_commit(notifiers.FINISHED, str(record.pk))
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
        """Mark the failed attempt ``retry`` and enqueue its successor; return the child's uuid."""
        from .models import TaskRecord

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
            TaskRecord.objects.using(self.using).create(
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
                created_at=now,
                updated_at=now,
                eta=now + timedelta(seconds=delay),
            )
            self.notifier.send_on_commit(notifiers.ENQUEUED, record.queue)
        return child_uuid

    def add_progress(self, record: TaskRecord, seq: int, value: Any) -> None:
        """Store a progress item, fenced like ``finish``: raise ``LeaseLost`` if the lease is gone.

        One statement: the item is inserted only while this run still holds the task,
        so a worker that was paused past its lease cannot write into the rerun.
        """
        from .models import TaskProgress, TaskRecord

        connection = connections[self.using]
        quote = connection.ops.quote_name
        progress, task = TaskProgress._meta, TaskRecord._meta
        value_field = progress.get_field("value")
        sql = (
            f"INSERT INTO {quote(progress.db_table)} ({quote('task_id')}, {quote('seq')}, {quote('value')}, "
            f"{quote('created_at')}) SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM {quote(task.db_table)} "
            f"WHERE {quote('uuid')} = %s AND {quote('status')} = %s AND {quote('lease_token')} = %s)"
        )
        uuid_field, token_field = task.get_field("uuid"), task.get_field("lease_token")
        key = uuid_field.get_db_prep_value(record.pk, connection)
        params = [
            key,
            seq,
            value_field.get_db_prep_save(value, connection),
            task.get_field("created_at").get_db_prep_value(timezone.now(), connection),
            key,
            TaskStatus.PROCESS,
            token_field.get_db_prep_value(record.lease_token, connection),
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.rowcount == 0:
                raise LeaseLost(
                    f"task {record.pk} is no longer held by this run (rescued elsewhere or released); "
                    "progress item not written"
                )

    def _forget_progress(self, uuids: list[Any]) -> None:
        # A task going back to the queue starts over: its next run numbers its
        # progress items from 1 again.
        from .models import TaskProgress

        TaskProgress.objects.using(self.using).filter(task_id__in=uuids).delete()

    def suspects_waiting(self, queues: list[str] | None) -> bool:
        """Whether a rescued task is ready and waits for a worker to run it alone."""
        from .models import TaskRecord

        return TaskRecord.objects.using(self.using).ready(queues).filter(rescues__gt=0).exists()

    def cancel_requests(self, uuids: list[uuid_lib.UUID]) -> dict[uuid_lib.UUID, str]:
        """Return uuid → reason for the running tasks among ``uuids`` that someone asked to cancel."""
        from .models import TaskRecord

        if not uuids:
            return {}
        rows = TaskRecord.objects.using(self.using).filter(
            pk__in=uuids, status=TaskStatus.PROCESS, cancel_requested_at__isnull=False
        )
        return {pk: reason or "cancelled" for pk, reason in rows.values_list("pk", "cancel_reason")}

    def next_eta(self, queues: list[str] | None) -> Any:
        """Return when the next delayed task becomes ready, or ``None`` if none waits."""
        from django.db.models import Min

        from .models import TaskRecord

        waiting = TaskRecord.objects.using(self.using).filter(status=TaskStatus.NEW, eta__gt=timezone.now())
        if queues:
            waiting = waiting.filter(queue__in=queues)
        return waiting.aggregate(next=Min("eta"))["next"]

    def renew_leases(self, worker_id: str, uuids: list[uuid_lib.UUID]) -> None:
        """Extend the leases of the tasks this worker is still running."""
        from .models import TaskRecord

        if uuids:
            TaskRecord.objects.using(self.using).filter(
                pk__in=uuids, status=TaskStatus.PROCESS, worker_id=worker_id
            ).update(lease_expires_at=timezone.now() + timedelta(seconds=settings.LEASE_TIMEOUT))

    def release(self, worker_id: str, uuids: list[uuid_lib.UUID]) -> int:
        """Put tasks this worker gives up (shutdown) back in the queue, untouched."""
        from .models import TaskRecord

        if not uuids:
            return 0
        with transaction.atomic(using=self.using):
            count = (
                TaskRecord.objects.using(self.using)
                .filter(pk__in=uuids, status=TaskStatus.PROCESS, worker_id=worker_id)
                .update(**_back_to_queue())
            )
            self._forget_progress(uuids)
            if count:
                self.notifier.send_on_commit(notifiers.ENQUEUED, "*")
        return count

    def rescue(self, batch: int = 100) -> tuple[int, int]:
        """Requeue tasks whose lease expired; poison pills end ``error``. Return (requeued, failed)."""
        from .models import TaskRecord

        manager = TaskRecord.objects.using(self.using)
        with transaction.atomic(using=self.using):
            expired = list(
                manager.lease_expired()
                .select_for_update(skip_locked=True)
                .values_list("pk", "rescues")[:batch]
            )
            poison = [pk for pk, rescues in expired if rescues >= settings.MAX_RESCUES]
            again = [pk for pk, rescues in expired if rescues < settings.MAX_RESCUES]
            now = timezone.now()
            if poison:
                manager.filter(pk__in=poison).update(
                    status=TaskStatus.ERROR,
                    traceback=(
                        f"qtasks_django.exceptions.WorkerLost: the worker running this task was lost "
                        f"{settings.MAX_RESCUES + 1} times; it is not run again"
                    ),
                    finished_at=now,
                    updated_at=now,
                    lease_token=None,
                    lease_expires_at=None,
                )
                for pk in poison:
                    self.notifier.send_on_commit(notifiers.FINISHED, str(pk))
            if again:
                manager.filter(pk__in=again).update(rescues=F("rescues") + 1, **_back_to_queue())
                self._forget_progress(again)
                self.notifier.send_on_commit(notifiers.ENQUEUED, "*")
        return len(again), len(poison)


def _back_to_queue() -> dict[str, Any]:
    return {
        "status": TaskStatus.NEW,
        "worker_id": "",
        "lease_token": None,
        "lease_expires_at": None,
        "started_at": None,
        "updated_at": timezone.now(),
    }
