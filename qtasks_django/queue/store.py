"""``DatabaseQueue``: the task floor's one seam to the database.

Everything a caller does to task rows goes through it: write new rows, read one, cancel
one, persist the registered tasks. The worker's side (claims, leases, finishes) has
classes of its own in ``claims``, ``leases`` and ``finishes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from .. import notifiers, signals
from ..models import TaskProgress, TaskRecord
from ..serialization import parse_uuid
from ..status import TaskStatus
from . import inserts, registered
from .pauses import QueuePauses
from .rows import NewRow

DB = "default"
#: A retry chain is short; the bound guards against a corrupt loop of links.
MAX_CHAIN_HOPS = 100


class DatabaseQueue:
    """Write, read and cancel task rows in the database ``using``."""

    def __init__(self, using: str = DB) -> None:
        self.using = using

    @property
    def notifier(self) -> notifiers.BaseNotifier:
        return notifiers.get_notifier(self.using)

    @property
    def pauses(self) -> QueuePauses:
        """Paused queues (``pauses.QueuePauses``)."""
        return QueuePauses(self.using)

    @property
    def in_transaction(self) -> bool:
        """Whether the caller is inside ``atomic()`` (nothing it writes is visible yet)."""
        return bool(connections[self.using].in_atomic_block)

    def insert(self, rows: Sequence[NewRow]) -> Sequence[NewRow]:
        """Write ``rows`` in the caller's transaction; workers wake when it commits."""
        inserts.insert(rows, using=self.using)
        return rows

    def get(self, uuid: Any) -> TaskRecord | None:
        """Return the task's row, or ``None`` if there is none."""
        key = parse_uuid(uuid)
        if key is None:
            return None
        return TaskRecord.objects.using(self.using).filter(pk=key).first()

    def attempts(self, uuid: Any) -> list[TaskRecord]:
        """Return every attempt of the task ``uuid`` belongs to, first to current ([] if none).

        Follows ``retry_parent_uuid`` up to the first attempt and ``retry_child_uuid``
        down to the current one (a worker's retry or the admin's), so any attempt's id
        names the whole chain.
        """
        manager = TaskRecord.objects.using(self.using)
        row = self.get(uuid)
        if row is None:
            return []
        for _hop in range(MAX_CHAIN_HOPS):
            parent = row.retry_parent_uuid and manager.filter(pk=row.retry_parent_uuid).first()
            if not parent:
                break
            row = parent
        chain = [row]
        for _hop in range(MAX_CHAIN_HOPS):
            child = row.retry_child_uuid and manager.filter(pk=row.retry_child_uuid).first()
            if not child:
                break
            chain.append(child)
            row = child
        return chain

    def progress(self, uuid: Any) -> list[Any]:
        """Return the task's progress items, in order."""
        items = TaskProgress.objects.using(self.using).filter(task_id=parse_uuid(uuid)).order_by("seq")
        return list(items.values_list("value", flat=True))

    def cancel(self, uuid: Any, reason: str = "") -> str | None:
        """Cancel a task (following its retry chain to the attempt that is current).

        Return ``"cancel"`` when it was waiting (it never starts), ``"process"`` when it
        is running (its worker stops it and it ends ``cancel``), ``None`` when there is
        no such task or it has already ended.
        """
        key = parse_uuid(uuid)
        if key is None:
            return None  # a bad id names no task
        manager = TaskRecord.objects.using(self.using)
        row = None
        for _hop in range(MAX_CHAIN_HOPS):
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

    def persist_registered(self, metadata: Mapping[str, dict[str, Any]], *, worker_id: str | None) -> int:
        """Upsert one registered-task row per name (see ``registered.persist``)."""
        return registered.persist(metadata, worker_id=worker_id, using=self.using)

    def sync_registered(self, metadata: Mapping[str, dict[str, Any]]) -> int:
        """Write the registered-task rows that are missing or differ (see ``registered.sync``)."""
        return registered.sync(metadata, using=self.using)
