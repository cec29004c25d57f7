"""``self.ctx``: a running task's handle on the infrastructure."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid as uuid_lib
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from ..exceptions import TaskCancelError, TaskPluginTriggerError

if TYPE_CHECKING:
    from ..conf import QTasksSettings
    from .app import QueueTasks
    from .results import Task

#: The uuid of the task running in this thread or coroutine; enqueues record it as parent.
current_task_uuid: ContextVar[uuid_lib.UUID | None] = ContextVar("qtasks_current_task", default=None)


class TaskLogger(logging.LoggerAdapter):
    """Logs as usual and keeps each line, to be stored with the task."""

    def __init__(self, logger: logging.Logger, task_uuid: uuid_lib.UUID | None, lines: list[dict[str, Any]]):
        super().__init__(logger, {"task_uuid": str(task_uuid)})
        self.lines = lines

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            message = str(msg) % args if args else str(msg)
            self.lines.append(
                {
                    "created_at": timezone.now(),
                    "level": logging.getLevelName(level),
                    "logger": self.logger.name,
                    "message": message,
                }
            )
        super().log(level, msg, *args, **kwargs)


class TaskContext:
    """What ``self.ctx`` offers inside a task (the seed table, every member).

    In an async task the I/O members (``get_metadata``, ``get_task``, ``sleep``)
    return awaitables; the ``a``-prefixed twins are always awaitable.
    """

    def __init__(
        self,
        *,
        app: QueueTasks,
        task_name: str,
        task_uuid: uuid_lib.UUID | None = None,
        is_async: bool = False,
        components: dict[str, Any] | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.app = app
        self.task_name = task_name
        self.task_uuid = task_uuid
        self.is_async = is_async
        self.components = {"app": app, "config": app.config, **(components or {})}
        self.stop_event = stop_event or threading.Event()
        self.stop_reason = ""
        self.log_lines: list[dict[str, Any]] = []
        self._metadata: Task | None = None

    def get_logger(self, name: str | None = None) -> TaskLogger:
        """Return a logger whose lines are also kept with the task (shown in the admin)."""
        logger = logging.getLogger(f"qtasks_django.tasks.{name or self.task_name}")
        return TaskLogger(logger, self.task_uuid, self.log_lines)

    def get_config(self) -> QTasksSettings:
        return self.app.config

    def get_metadata(self, cache: bool = True) -> Any:
        """Return this task's record (``app.get(task_uuid)``); awaitable in async tasks."""
        return self._maybe_async(self._get_metadata, cache)

    async def aget_metadata(self, cache: bool = True) -> Task:
        return await sync_to_async(self._get_metadata)(cache)

    def _get_metadata(self, cache: bool) -> Task:
        if self.task_uuid is None:
            raise ValueError("ctx.get_metadata() needs a running task (task_uuid is None)")
        if self._metadata is None or not cache:
            task = self.app.get(self.task_uuid)
            if task is None:
                raise LookupError(f"task {self.task_uuid} is gone")
            self._metadata = task
        return self._metadata

    def get_task(self, uuid: Any) -> Any:
        """Return another task's snapshot or ``None``; awaitable in async tasks."""
        return self._maybe_async(self.app.get, uuid)

    async def aget_task(self, uuid: Any) -> Task | None:
        return await sync_to_async(self.app.get)(uuid)

    def sleep(self, seconds: float) -> Any:
        """Sleep; end early with ``TaskCancelError`` when the task must stop. Awaitable in async tasks."""
        if self.is_async:
            return self.asleep(seconds)
        if self.stop_event.wait(seconds):
            self.raise_stopped()
        return None

    async def asleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self.stop_event.is_set():
                self.raise_stopped()
            await asyncio.sleep(min(remaining, 0.05))
        if self.stop_event.is_set():
            self.raise_stopped()

    def raise_stopped(self) -> None:
        """Raise the ``TaskCancelError`` that ends a task asked to stop."""
        raise TaskCancelError(self.stop_reason or f"{self.task_name}: stopped by the worker")

    def cancel(self, reason: str = "") -> None:
        """Cancel this task: status ``cancel`` with ``reason`` stored. Never retried."""
        raise TaskCancelError(reason or f"{self.task_name}.cancel")

    def plugin_error(self, **kwargs: Any) -> None:
        """Raise the plugin-trigger error; ``app.on_plugin_error`` handlers may turn it into a result."""
        raise TaskPluginTriggerError(**kwargs)

    def get_component(self, name: str) -> Any:
        """Return ``"app"``, ``"broker"``/``"storage"`` (the queue), ``"worker"``, ``"notifier"``, ``"config"``."""
        try:
            return self.components[name]
        except KeyError:
            known = ", ".join(sorted(self.components))
            raise LookupError(f"no component {name!r}; known: {known}") from None

    def _maybe_async(self, func: Any, *args: Any) -> Any:
        if self.is_async:
            return sync_to_async(func)(*args)
        return func(*args)
