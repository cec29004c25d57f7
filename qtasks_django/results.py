"""Waiting for a task enqueued earlier: ``SyncResult`` / ``AsyncResult``."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import connections

from . import notifiers
from .conf import settings
from .queue import parse_uuid
from .schemas import Task
from .status import TaskStatus

if TYPE_CHECKING:
    from .registry import QueueTasks

logger = logging.getLogger(__name__)


class TaskResult:
    """A handle on a task's outcome; ``get``/``aget`` wait for it, following retries."""

    def __init__(self, uuid: Any, app: QueueTasks | None = None) -> None:
        self.uuid = uuid
        self._app = app

    @property
    def app(self) -> QueueTasks:
        from .registry import get_app

        return self._app or get_app()

    def get(self, timeout: float = 100.0) -> Task | None:
        """Block until the task reaches an end status; ``None`` if it is unknown or time runs out.

        Wakes on the notifier's "finished" messages, with a database poll as a safety net.
        """
        deadline = time.monotonic() + timeout
        queue = self.app.queue
        ends = set(settings.RESULT_STATUSES_END)
        current = parse_uuid(self.uuid)
        with queue.notifier.listen([notifiers.FINISHED]) as listener:
            poll = 0.02
            while True:
                task = queue.get(current, with_progress=False) if current else None
                if task is None:
                    logger.warning("Task %s does not exist", self.uuid)
                    return None
                if task.status == TaskStatus.RETRY and task.retry_child_uuid:
                    current = task.retry_child_uuid  # follow the chain to the final attempt
                    continue
                if task.status in ends:
                    return queue.get(current)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logger.warning("Task %s timed out after %s seconds!", self.uuid, timeout)
                    return None
                if listener.healthy:
                    listener.wait(min(remaining, 5.0))  # re-check at least every 5 s in case one was lost
                else:
                    listener.wait(min(remaining, poll))
                    poll = min(poll * 1.5, settings.POLL_INTERVAL)

    async def aget(self, timeout: float = 100.0) -> Task | None:
        """Async twin of :meth:`get` (waits in a thread, not on the event loop)."""
        return await sync_to_async(_get_and_close, thread_sensitive=False)(self, timeout)


def _get_and_close(result: TaskResult, timeout: float) -> Task | None:
    try:
        return result.get(timeout)
    finally:
        connections.close_all()  # this thread's connections only; it is not ours to keep


class SyncResult(TaskResult):
    """``SyncResult(uuid).result(timeout)`` blocks and returns the final ``Task`` or ``None``."""

    result = TaskResult.get


class AsyncResult(TaskResult):
    """``await AsyncResult(uuid).result(timeout)``."""

    result = TaskResult.aget
