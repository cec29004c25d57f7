"""Value objects: the registration record and the task snapshot."""

from __future__ import annotations

import inspect
import uuid as uuid_lib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .executors import BaseTaskExecutor
    from .middleware import TaskMiddleware
    from .models import TaskRecord


@dataclass(kw_only=True)
class TaskExecSchema:
    """Everything the worker needs to run a registered task, the function included."""

    name: str
    priority: int
    func: Callable[..., Any]
    awaiting: bool = False
    generating: Literal["sync", "async", False] = False
    echo: bool = False
    max_time: float | None = None
    retry: int | None = None
    retry_on_exc: list[type[BaseException]] | None = None
    decode: Callable[[Any], Any] | None = None
    tags: list[str] | None = None
    description: str | None = None
    generate_handler: Callable[[Any], Any] | None = None
    executor: type[BaseTaskExecutor] | None = None
    middlewares_before: list[type[TaskMiddleware]] = field(default_factory=list)
    middlewares_after: list[type[TaskMiddleware]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def runs_async(self) -> bool:
        """Whether the function runs on the event loop (``async def``, async generators included)."""
        return inspect.iscoroutinefunction(self.func) or self.generating == "async"

    @property
    def queue(self) -> str | None:
        """The queue named by ``@task(queue=...)``, if any (it lives in ``extra``)."""
        return self.extra.get("queue")

    def add_middlewares_before(self, middlewares: list[type[TaskMiddleware]]) -> None:
        self.middlewares_before.extend(middlewares)

    def add_middlewares_after(self, middlewares: list[type[TaskMiddleware]]) -> None:
        self.middlewares_after.extend(middlewares)


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

    @classmethod
    def from_record(cls, record: TaskRecord, progress: list[Any] | None = None) -> Task:
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
        )

    def wait_result(self, timeout: float = 100.0) -> Task | None:
        """Block until this task (or its last retry) ends; ``None`` on expiry."""
        from .results import SyncResult

        return SyncResult(self.uuid).result(timeout)

    async def await_result(self, timeout: float = 100.0) -> Task | None:
        """Async twin of :meth:`wait_result`."""
        from .results import AsyncResult

        return await AsyncResult(self.uuid).result(timeout)

    #: Upstream's name for the async twin.
    wait_result_async = await_result
