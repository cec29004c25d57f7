"""A worker's row in ``WorkerRecord``: registration, heartbeats, and its end."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from ..conf import settings
from ..models import WorkerRecord


def heartbeat_deadline(now: datetime | None = None) -> datetime:
    """A worker whose last heartbeat is older than this is gone (its leases have lapsed)."""
    grace = max(settings.LEASE_TIMEOUT, 3 * settings.HEARTBEAT_INTERVAL)
    return (now or timezone.now()) - timedelta(seconds=grace)


def live_workers(now: datetime | None = None, *, using: str = "default") -> QuerySet[WorkerRecord]:
    """Workers that have not stopped and whose heartbeat is recent."""
    return WorkerRecord.objects.using(using).filter(
        stopped_at__isnull=True, heartbeat_at__gte=heartbeat_deadline(now)
    )


def register_worker(worker_id: str, *, queues: list[str] | None, concurrency: int, using: str) -> None:
    """Write (or refresh) the row of the worker ``worker_id``, which runs in this process."""
    WorkerRecord.objects.using(using).update_or_create(
        id=worker_id,
        defaults={
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": queues or ["*"],
            "concurrency": concurrency,
        },
    )


def heartbeat(worker_id: str, *, using: str) -> None:
    """Say the worker is alive (its leases are renewed by ``leases.Leases.renew``)."""
    WorkerRecord.objects.using(using).filter(id=worker_id).update(heartbeat_at=timezone.now())


def mark_stopped(worker_id: str, *, using: str) -> None:
    WorkerRecord.objects.using(using).filter(id=worker_id).update(stopped_at=timezone.now())
