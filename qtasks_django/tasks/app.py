"""The app (``QueueTasks``), the shared registry and ``shared_task``.

The app's calls reach the database through one seam, ``QueueTasks.queue``. Registries
and routers are in ``registry``.
"""

from __future__ import annotations

import weakref
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import sync_to_async
from django.utils.module_loading import import_string

from ..conf import QTasksSettings, settings
from ..exceptions import DuplicateTaskName, QTasksError
from . import enqueue
from .definition import TaskExecSchema
from .enqueue import Call
from .registry import AsyncRouter, BaseRouter, SyncRouter, TaskRegistry
from .results import Task, TaskResult
from .task import BaseTaskCls

__all__ = ["AsyncRouter", "BaseRouter", "QueueTasks", "SyncRouter", "TaskRegistry", "get_app", "shared_task"]

if TYPE_CHECKING:
    from ..queue.explain import Explanation
    from ..queue.pauses import Pause
    from ..queue.store import DatabaseQueue


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
        unique_key: str | None = None,
        unique_for: float | None = None,
        **kwargs: Any,
    ) -> Task | None:
        """Validate and enqueue ``task_name``; with ``timeout`` wait for its end (``None`` on expiry).

        ``eta`` (an aware datetime) or ``countdown`` (seconds) delays the start.
        ``unique_key`` (and ``unique_for`` seconds) makes it a unique task: while a task
        of this name holds the key, that task is returned (``created`` is ``False``) and
        nothing is written (docs/flow-control.md).
        """
        call = Call(
            task_name, args, kwargs, priority, eta, countdown, unique_key=unique_key, unique_for=unique_for
        )
        return enqueue.enqueue(self, call, timeout=timeout)

    async def aadd_task(
        self,
        task_name: str,
        *args: Any,
        priority: int | None = None,
        timeout: float | None = None,
        eta: datetime | None = None,
        countdown: float | None = None,
        unique_key: str | None = None,
        unique_for: float | None = None,
        **kwargs: Any,
    ) -> Task | None:
        """Async twin of :meth:`add_task`."""
        call = Call(
            task_name, args, kwargs, priority, eta, countdown, unique_key=unique_key, unique_for=unique_for
        )
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

    def explain(self, uuid: Any) -> Explanation | None:
        """Say why the task is not running (eta, paused queue, limits, workers...); ``None`` if unknown."""
        from ..queue.explain import explain  # imports the models: not before Django's apps are ready

        return explain(uuid, using=self.queue.using)

    async def aexplain(self, uuid: Any) -> Explanation | None:
        """Async twin of :meth:`explain`."""
        return await sync_to_async(self.explain)(uuid)

    def pause_queue(self, queue: str, *, reason: str = "", by: str = "") -> bool:
        """Stop every worker claiming from ``queue`` (running tasks finish); ``False`` if already paused."""
        return self.queue.pauses.pause(queue, reason=reason, by=by)

    async def apause_queue(self, queue: str, *, reason: str = "", by: str = "") -> bool:
        """Async twin of :meth:`pause_queue`."""
        return await sync_to_async(self.pause_queue)(queue, reason=reason, by=by)

    def resume_queue(self, queue: str) -> bool:
        """Let workers claim from ``queue`` again, waking them at once; ``False`` if it was not paused."""
        return self.queue.pauses.resume(queue)

    async def aresume_queue(self, queue: str) -> bool:
        """Async twin of :meth:`resume_queue`."""
        return await sync_to_async(self.resume_queue)(queue)

    def paused_queues(self) -> list[Pause]:
        """Every paused queue, with when, by whom and why it was paused."""
        return self.queue.pauses.paused()

    def get(self, uuid: Any) -> Task | None:
        """Return the task with ``uuid`` (a snapshot, with its progress items), or ``None``."""
        queue = self.queue
        record = queue.get(uuid)
        return None if record is None else Task.from_record(record, queue.progress(record.pk))

    async def aget(self, uuid: Any) -> Task | None:
        return await sync_to_async(self.get)(uuid)


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


def _as_call(call: Any) -> Call:
    if not isinstance(call, BaseTaskCls):
        raise TypeError(f"add_tasks() takes prebuilt calls such as my_task(1, 2), got {call!r}")
    return Call(
        call.task_name,
        call.args,
        call.kwargs,
        call.priority,
        call.eta,
        call.countdown,
        unique_key=call.unique_key,
        unique_for=call.unique_for,
    )
