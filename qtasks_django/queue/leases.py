"""Leases of running tasks: renewal, cancel requests, release at shutdown, rescue of the lost."""

from __future__ import annotations

import uuid as uuid_lib
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import notifiers
from ..conf import settings
from ..models import TaskProgress, TaskRecord
from ..status import TaskStatus

#: Expired leases handled by one rescue sweep.
RESCUE_BATCH = 100


class Leases:
    """What a worker does to the leases of tasks it runs, and to those of lost workers."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def renew(self, worker_id: str, uuids: list[uuid_lib.UUID]) -> None:
        """Extend the leases of the tasks this worker is still running."""
        if uuids:
            TaskRecord.objects.using(self.using).filter(
                pk__in=uuids, status=TaskStatus.PROCESS, worker_id=worker_id
            ).update(lease_expires_at=timezone.now() + timedelta(seconds=settings.LEASE_TIMEOUT))

    def cancel_requests(self, uuids: list[uuid_lib.UUID]) -> dict[uuid_lib.UUID, str]:
        """Return uuid → reason for the running tasks among ``uuids`` that someone asked to cancel."""
        if not uuids:
            return {}
        rows = TaskRecord.objects.using(self.using).filter(
            pk__in=uuids, status=TaskStatus.PROCESS, cancel_requested_at__isnull=False
        )
        return {pk: reason or "cancelled" for pk, reason in rows.values_list("pk", "cancel_reason")}

    def release(self, worker_id: str, uuids: list[uuid_lib.UUID]) -> int:
        """Put tasks this worker gives up (shutdown) back in the queue, untouched."""
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
                notifiers.get_notifier(self.using).send_on_commit(notifiers.ENQUEUED, "*")
        return count

    def rescue(self, batch: int = RESCUE_BATCH) -> tuple[int, int]:
        """Requeue tasks whose lease expired; poison pills end ``error``. Return (requeued, failed)."""
        manager = TaskRecord.objects.using(self.using)
        notifier = notifiers.get_notifier(self.using)
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
                    notifier.send_on_commit(notifiers.FINISHED, str(pk))
            if again:
                manager.filter(pk__in=again).update(rescues=F("rescues") + 1, **_back_to_queue())
                self._forget_progress(again)
                notifier.send_on_commit(notifiers.ENQUEUED, "*")
        return len(again), len(poison)

    def _forget_progress(self, uuids: list[Any]) -> None:
        # A task going back to the queue starts over: its next run numbers its
        # progress items from 1 again.
        TaskProgress.objects.using(self.using).filter(task_id__in=uuids).delete()


def _back_to_queue() -> dict[str, Any]:
    return {
        "status": TaskStatus.NEW,
        "worker_id": "",
        "lease_token": None,
        "lease_expires_at": None,
        "started_at": None,
        "updated_at": timezone.now(),
    }
