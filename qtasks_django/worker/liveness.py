"""A worker's presence: its row, its heartbeat (which renews its leases), and the rescue of
the tasks of workers that stopped heartbeating."""

from __future__ import annotations

import logging
import uuid as uuid_lib
from typing import TYPE_CHECKING

from ..queue import presence
from ..queue.leases import Leases
from ..tasks.registration import persist_registered_tasks

if TYPE_CHECKING:
    from ..tasks.app import QueueTasks

logger = logging.getLogger("qtasks_django.worker")


class Liveness:
    """What a worker writes to say it is alive, and what it does for workers that are not."""

    def __init__(
        self, *, app: QueueTasks, worker_id: str, queues: list[str] | None, concurrency: int, leases: Leases
    ) -> None:
        self.app = app
        self.worker_id = worker_id
        self.queues = queues
        self.concurrency = concurrency
        self.leases = leases

    def register(self) -> bool:
        """Write the worker's row and the tasks it can run (``True`` once written)."""
        using = self.leases.using
        presence.register_worker(
            self.worker_id, queues=self.queues, concurrency=self.concurrency, using=using
        )
        persist_registered_tasks(self.app, worker_id=self.worker_id)
        return True

    def heartbeat(self, holding: list[uuid_lib.UUID]) -> None:
        """Say the worker is alive and extend the leases of the tasks it holds."""
        presence.heartbeat(self.worker_id, using=self.leases.using)
        self.leases.renew(self.worker_id, holding)

    def rescue(self) -> None:
        """Requeue the tasks of lost workers (their leases expired); poison pills end in error."""
        requeued, failed = self.leases.rescue()
        if requeued or failed:
            logger.warning("rescued tasks of lost workers: requeued=%d failed=%d", requeued, failed)

    def mark_stopped(self) -> None:
        presence.mark_stopped(self.worker_id, using=self.leases.using)
