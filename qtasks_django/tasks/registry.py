"""Task registries: the ``task`` decorator that fills one, and the routers.

A registry holds name → ``TaskExecSchema`` and does no I/O at declaration time. The app
(``app.QueueTasks``) is a registry too; a router's tasks join an app's with
``app.include_router``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, overload

from ..conf import settings
from ..exceptions import DuplicateTaskName, InvalidTaskArguments, InvalidTaskDefinition, QTasksError
from .definition import TaskExecSchema, build_schema
from .task import AsyncTask, BaseTask, SyncTask
from .validation import check_binding

if TYPE_CHECKING:
    from .app import QueueTasks


class TaskRegistry:
    """Name → schema, plus the ``task`` decorator that fills it."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskExecSchema] = {}

    @property
    def tasks(self) -> Mapping[str, TaskExecSchema]:
        return self._tasks

    def get_app(self) -> QueueTasks:
        raise NotImplementedError

    def _names_taken(self) -> Mapping[str, TaskExecSchema]:
        return self._tasks

    def register(self, schema: TaskExecSchema) -> None:
        """Add ``schema``; a name already taken is an error at import time."""
        existing = self._names_taken().get(schema.name)
        if existing is not None:
            raise DuplicateTaskName(
                f"Task with name {schema.name!r} is already registered "
                f"({existing.func.__module__}.{existing.func.__qualname__})"
            )
        self._tasks[schema.name] = schema

    @overload
    def task(self, name: Callable[..., Any]) -> BaseTask: ...
    @overload
    def task(self, name: str | None = None, **options: Any) -> Callable[[Callable[..., Any]], BaseTask]: ...

    def task(self, name: Any = None, **options: Any) -> Any:
        """Register a function as a task: ``@x.task``, ``@x.task()`` or ``@x.task(name, ...)``.

        Options: priority, echo, max_time, retry, retry_on_exc, decode, tags,
        description, generate_handler, executor, middlewares_before,
        middlewares_after, schedule (a cron expression or a ``timedelta``: see
        docs/schedules.md); any other keyword lands in ``extra``.
        """
        if callable(name):
            return self._decorate(name, None, options)
        return lambda func: self._decorate(func, name, options)

    def _decorate(self, func: Callable[..., Any], name: str | None, options: dict[str, Any]) -> BaseTask:
        # ``takes_context`` is the Django backend's: only its executor passes a context.
        known = set(inspect.signature(build_schema).parameters) - {"func", "name", "extra", "takes_context"}
        params = {k: v for k, v in options.items() if k in known}
        extra = {k: v for k, v in options.items() if k not in known}
        if params.get("priority") is None:
            params["priority"] = self._default_priority()
        schema = build_schema(func, name=name, extra=extra, **params)
        if schema.schedule is not None:
            check_schedulable(schema)
        self.register(schema)
        return (AsyncTask if schema.awaiting else SyncTask)(schema, owner=self)

    def _default_priority(self) -> int:
        # Read when the task is declared (autodiscovery runs after settings load).
        return settings.DEFAULT_PRIORITY


class BaseRouter(TaskRegistry):
    """A set of tasks declared apart from the app and attached with ``app.include_router``."""

    def __init__(self) -> None:
        super().__init__()
        self.app: QueueTasks | None = None

    def get_app(self) -> QueueTasks:
        if self.app is None:
            raise QTasksError("This router is not included in an app: call app.include_router(router)")
        return self.app

    def _names_taken(self) -> Mapping[str, TaskExecSchema]:
        return self.app.tasks if self.app is not None else self._tasks


class SyncRouter(BaseRouter):
    """Router name kept from QTasks; sync and async functions are both welcome."""


class AsyncRouter(BaseRouter):
    """Router name kept from QTasks; sync and async functions are both welcome."""


def check_schedulable(schema: TaskExecSchema) -> None:
    """A task with ``schedule=`` is enqueued with no arguments: its function must allow that."""
    try:
        check_binding(schema, (), {})
    except InvalidTaskArguments:
        raise InvalidTaskDefinition(
            f"Task {schema.name!r}: schedule= enqueues it with no arguments, but it needs some; "
            "give them in a QTASKS['SCHEDULES'] entry instead"
        ) from None
