"""Task registries: ``QueueTasks`` (the app), routers, and ``shared_task``.

Registries hold name → ``TaskExecSchema`` and do no I/O at declaration time. The app's
calls reach the database through one seam, ``QueueTasks.queue``.
"""

from __future__ import annotations

import inspect
import weakref
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast, overload

from asgiref.sync import sync_to_async
from django.utils.module_loading import import_string

from ..conf import QTasksSettings, settings
from ..exceptions import DuplicateTaskName, InvalidTaskArguments, InvalidTaskDefinition, QTasksError
from . import enqueue
from .definition import TaskExecSchema, build_schema
from .enqueue import Call
from .results import Task, TaskResult
from .task import AsyncTask, BaseTask, BaseTaskCls, SyncTask
from .validation import check_binding

if TYPE_CHECKING:
    from ..queue.store import DatabaseQueue


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
        known = set(inspect.signature(build_schema).parameters) - {"func", "name", "extra"}
        params = {k: v for k, v in options.items() if k in known}
        extra = {k: v for k, v in options.items() if k not in known}
        if params.get("priority") is None:
            params["priority"] = self._default_priority()
        schema = build_schema(func, name=name, extra=extra, **params)
        if schema.schedule is not None:
            _check_schedulable(schema)
        self.register(schema)
        return (AsyncTask if schema.awaiting else SyncTask)(schema, owner=self)

    def _default_priority(self) -> int:
        # Read when the task is declared (autodiscovery runs after settings load).
        return settings.DEFAULT_PRIORITY


class SharedRegistry(TaskRegistry):
    """Where ``@shared_task`` puts tasks; every ``QueueTasks`` sees them."""

    def get_app(self) -> QueueTasks:
        return get_app()

    def _names_taken(self) -> Mapping[str, TaskExecSchema]:
        # cast: typeshed wants every map of a ChainMap mutable, but only the first one
        # (ours) is ever written; the apps' read-only views are only looked up.
        apps = (cast(MutableMapping[str, TaskExecSchema], app.tasks) for app in _live_apps)
        return ChainMap(self._tasks, *apps)


class QueueTasks(TaskRegistry):
    """A task application: its tasks, its routers, and the calls that enqueue and read tasks.

    ``app.tasks`` includes every shared task, also those declared after the app.
    """

    def __init__(self, name: str = "default") -> None:
        super().__init__()
        self.name = name
        self.routers: list[BaseRouter] = []
        self._plugin_error_handlers: list[Callable[..., Any]] = []
        _live_apps.add(self)

    def __repr__(self) -> str:
        return f"<QueueTasks {self.name!r}: {len(self.tasks)} tasks>"

    @property
    def tasks(self) -> Mapping[str, TaskExecSchema]:
        # A view, not a copy: tasks declared later on a shared registry or an
        # included router are known at once.
        return ChainMap(self._tasks, *(r._tasks for r in self.routers), shared_registry._tasks)

    def _names_taken(self) -> Mapping[str, TaskExecSchema]:
        return self.tasks

    def get_app(self) -> QueueTasks:
        return self

    @property
    def config(self) -> QTasksSettings:
        """The validated ``QTASKS`` settings."""
        return settings.load()

    @property
    def queue(self) -> DatabaseQueue:
        """The seam to the database: every read and write of the app goes through it."""
        # Imported on first use: the queue imports the models, and this module is
        # imported (by ``qtasks_django``) before Django's apps are ready.
        from ..queue.store import DatabaseQueue

        return DatabaseQueue()

    def include_router(self, router: BaseRouter) -> None:
        """Attach a router's tasks to this app, also those declared later; a clashing name is an error."""
        if router in self.routers:
            return
        if router.app is not None:
            raise QTasksError(f"This router is already included in {router.app!r}")
        for name in router.tasks:
            existing = self.tasks.get(name)
            if existing is not None:
                raise DuplicateTaskName(
                    f"Task with name {name!r} from the router is already registered "
                    f"({existing.func.__module__}.{existing.func.__qualname__})"
                )
        router.app = self
        self.routers.append(router)

    def on_plugin_error(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``handler(task_name, exc)``; a dict with ``"result"`` turns the error into success."""
        self._plugin_error_handlers.append(handler)
        return handler

    def add_task(
        self,
        task_name: str,
        *args: Any,
        priority: int | None = None,
        timeout: float | None = None,
        eta: datetime | None = None,
        countdown: float | None = None,
        **kwargs: Any,
    ) -> Task | None:
        """Validate and enqueue ``task_name``; with ``timeout`` wait for its end (``None`` on expiry).

        ``eta`` (an aware datetime) or ``countdown`` (seconds) delays the start.
        """
        return enqueue.enqueue(self, Call(task_name, args, kwargs, priority, eta, countdown), timeout=timeout)

    async def aadd_task(
        self,
        task_name: str,
        *args: Any,
        priority: int | None = None,
        timeout: float | None = None,
        eta: datetime | None = None,
        countdown: float | None = None,
        **kwargs: Any,
    ) -> Task | None:
        """Async twin of :meth:`add_task`."""
        call = Call(task_name, args, kwargs, priority, eta, countdown)
        task = await sync_to_async(enqueue.enqueue)(self, call, timeout=timeout, wait=False)
        if timeout is None or task is None:
            return task
        # Wait off the thread-sensitive executor, which the rest of the process shares.
        return await TaskResult(task.uuid, app=self).aget(timeout)

    def add_tasks(self, calls: Iterable[BaseTaskCls]) -> list[Task]:
        """Enqueue many prebuilt calls (``my_task(1, 2)``) in one statement; all or none are written."""
        return enqueue.enqueue_many(self, (_as_call(call) for call in calls))

    async def aadd_tasks(self, calls: Iterable[BaseTaskCls]) -> list[Task]:
        """Async twin of :meth:`add_tasks`."""
        return await sync_to_async(self.add_tasks)(list(calls))

    def cancel(self, uuid: Any, reason: str = "") -> str | None:
        """Cancel a task: ``"cancel"`` if it was waiting, ``"process"`` if its worker now stops it, else ``None``."""
        return self.queue.cancel(uuid, reason)

    async def acancel(self, uuid: Any, reason: str = "") -> str | None:
        """Async twin of :meth:`cancel`."""
        return await sync_to_async(self.cancel)(uuid, reason)

    def get(self, uuid: Any) -> Task | None:
        """Return the task with ``uuid`` (a snapshot, with its progress items), or ``None``."""
        queue = self.queue
        record = queue.get(uuid)
        return None if record is None else Task.from_record(record, queue.progress(record.pk))

    async def aget(self, uuid: Any) -> Task | None:
        return await sync_to_async(self.get)(uuid)


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


def get_app() -> QueueTasks:
    """Return the app named by ``QTASKS["APP"]`` (the default app unless configured)."""
    app = import_string(settings.APP)
    if not isinstance(app, QueueTasks):
        raise QTasksError(f"QTASKS['APP'] = {settings.APP!r} is not a QueueTasks instance")
    return app


#: Every QueueTasks alive, so that a shared task cannot take a name one of them uses.
_live_apps: weakref.WeakSet[QueueTasks] = weakref.WeakSet()
shared_registry = SharedRegistry()
default_app = QueueTasks("default")


def shared_task(name: Any = None, *, awaiting: bool | None = None, **options: Any) -> Any:
    """Declare a task outside any app; it binds to the configured app.

    ``awaiting=True`` makes ``add_task`` awaitable whatever the function.
    """
    if awaiting is not None:
        options["awaiting"] = awaiting
    return shared_registry.task(name, **options)


def _check_schedulable(schema: TaskExecSchema) -> None:
    """A task with ``schedule=`` is enqueued with no arguments: its function must allow that."""
    try:
        check_binding(schema, (), {})
    except InvalidTaskArguments:
        raise InvalidTaskDefinition(
            f"Task {schema.name!r}: schedule= enqueues it with no arguments, but it needs some; "
            "give them in a QTASKS['SCHEDULES'] entry instead"
        ) from None


def _as_call(call: Any) -> Call:
    if not isinstance(call, BaseTaskCls):
        raise TypeError(f"add_tasks() takes prebuilt calls such as my_task(1, 2), got {call!r}")
    return Call(call.task_name, call.args, call.kwargs, call.priority, call.eta, call.countdown)
