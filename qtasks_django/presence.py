"""A worker's row in ``WorkerRecord``: registration, heartbeats, and its end."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from .registration import persist_registered_tasks

if TYPE_CHECKING:
    from .worker import Worker


def register(worker: Worker) -> None:
    """Write (or refresh) the worker's row and the tasks it can run."""
    from .models import WorkerRecord

    WorkerRecord.objects.update_or_create(
        id=worker.id,
        defaults={
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": worker.queues or ["*"],
            "concurrency": worker.concurrency,
        },
    )
    persist_registered_tasks(worker.app, worker_id=worker.id)


def heartbeat(worker: Worker, running: list[Any]) -> None:
    """Say the worker is alive and extend the leases of the tasks it runs."""
    from .models import WorkerRecord

    WorkerRecord.objects.filter(id=worker.id).update(heartbeat_at=timezone.now())
    worker.queue.renew_leases(worker.id, running)


def mark_stopped(worker: Worker) -> None:
    from .models import WorkerRecord

    WorkerRecord.objects.filter(id=worker.id).update(stopped_at=timezone.now())
