"""What a caller gets back: the ``Task`` snapshot, and waiting for a task's end.

``SyncResult``/``AsyncResult`` (and ``Task.wait_result``) wait for a task enqueued
earlier, woken by the notifier, following its retries to the final attempt.
"""

from __future__ import annotations

import logging
import time
import uuid as uuid_lib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import connections
from django.utils.module_loading import import_string

from .. import notifiers
from ..conf import settings
from ..serialization import parse_uuid
from ..status import TaskStatus

if TYPE_CHECKING:
    from ..models import TaskRecord
    from ..queue.rows import NewRow
    from .app import QueueTasks

logger = logging.getLogger("qtasks_django.results")


@dataclass(kw_only=True)
class Task:
    """A snapshot of a task record, as ``add_task`` and ``app.get`` return it."""

    uuid: uuid_lib.UUID
    task_name: str
    status: str
    priority: int
    args: list[Any]
    kwargs: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    returning: Any = None
    traceback: str | None = None
    retry: int | None = None
    retry_parent_uuid: uuid_lib.UUID | None = None
    retry_child_uuid: uuid_lib.UUID | None = None
    cancel_reason: str | None = None
    queue: str = "default"
    attempt: int = 1
    parent_uuid: uuid_lib.UUID | None = None
    tags: list[str] = field(default_factory=list)
    eta: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker_id: str | None = None
    progress: list[Any] = field(default_factory=list)
    unique_key: str | None = None
    created: bool = True
    """``False`` when an enqueue found this task already holding its unique key and wrote nothing."""

    @classmethod
    def from_record(
        cls, record: TaskRecord, progress: list[Any] | None = None, *, created: bool = True
    ) -> Task:
        return cls(
            uuid=record.uuid,
            task_name=record.task_name,
            status=str(record.status),
            priority=record.priority,
            args=record.args,
            kwargs=record.kwargs,
            created_at=record.created_at,
            updated_at=record.updated_at,
            returning=record.returning,
            traceback=record.traceback or None,
            retry=record.retry,
            retry_parent_uuid=record.retry_parent_uuid,
            retry_child_uuid=record.retry_child_uuid,
            cancel_reason=record.cancel_reason or None,
            queue=record.queue,
            attempt=record.attempt,
            parent_uuid=record.parent_uuid,
            tags=list(record.tags or []),
            eta=record.eta,
            started_at=record.started_at,
            finished_at=record.finished_at,
            worker_id=record.worker_id or None,
            progress=progress or [],
            unique_key=record.unique_key,
            created=created,
        )

    @classmethod
    def from_new_row(cls, row: NewRow) -> Task:
        """Return the snapshot ``add_task`` gives back: the row as just written."""
        fields = row.fields
        return cls(
            uuid=fields["uuid"],
            task_name=fields["task_name"],
            status=str(TaskStatus.NEW),
            priority=fields["priority"],
            args=fields["args"],
            kwargs=fields["kwargs"],
            created_at=fields["created_at"],
            updated_at=fields["updated_at"],
            retry=fields["retry"],
            queue=fields["queue"],
            parent_uuid=fields["parent_uuid"],
            tags=list(fields["tags"]),
            eta=fields["eta"],
            unique_key=fields.get("unique_key"),
        )

    def wait_result(self, timeout: float = 100.0) -> Task | None:
        """Block until this task (or its last retry) ends; ``None`` on expiry."""
        return TaskResult(self.uuid).get(timeout)

    async def await_result(self, timeout: float = 100.0) -> Task | None:
        """Async twin of :meth:`wait_result`."""
        return await TaskResult(self.uuid).aget(timeout)

    #: Upstream's name for the async twin.
    wait_result_async = await_result


class TaskResult:
    """A handle on a task's outcome; ``get``/``aget`` wait for it, following retries."""

    def __init__(self, uuid: Any, app: QueueTasks | None = None) -> None:
        self.uuid = uuid
        self._app = app

    @property
    def app(self) -> QueueTasks:
        # By its dotted path, not through ``app.get_app``: the app module builds on this
        # one (its ``add_task`` waits with a ``TaskResult``). System checks vouch for the path.
        app: QueueTasks = self._app or import_string(settings.APP)
        return app

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
                task = _snapshot(queue.get(current)) if current else None
                if task is None:
                    logger.warning("Task %s does not exist", self.uuid)
                    return None
                if task.status == TaskStatus.RETRY and task.retry_child_uuid:
                    current = task.retry_child_uuid  # follow the chain to the final attempt
                    continue
                if task.status in ends:
                    return self.app.get(current)
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


def _snapshot(record: TaskRecord | None) -> Task | None:
    return None if record is None else Task.from_record(record)


class SyncResult(TaskResult):
    """``SyncResult(uuid).result(timeout)`` blocks and returns the final ``Task`` or ``None``."""

    result = TaskResult.get


class AsyncResult(TaskResult):
    """``await AsyncResult(uuid).result(timeout)``."""

    result = TaskResult.aget
