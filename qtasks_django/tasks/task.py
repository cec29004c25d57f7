"""The user-facing task objects: ``SyncTask``/``AsyncTask`` and prebuilt calls.

``BaseTask`` holds the one implementation; ``SyncTask`` and ``AsyncTask`` only pick
whether ``add_task`` is the blocking or the awaitable twin.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..exceptions import TaskNotRegistered

if TYPE_CHECKING:
    from .app import QueueTasks, TaskRegistry
    from .context import TaskContext
    from .definition import TaskExecSchema
    from .results import Task


class BaseTask:
    """A registered task: its parameters, its context, and how to enqueue it."""

    def __init__(self, schema: TaskExecSchema, owner: TaskRegistry, ctx: TaskContext | None = None) -> None:
        self.schema = schema
        self._owner = owner
        self.ctx = ctx
        self.task_name = schema.name
        self.priority = schema.priority
        self.echo = schema.echo
        self.max_time = schema.max_time
        self.retry = schema.retry
        self.retry_on_exc = schema.retry_on_exc
        self.decode = schema.decode
        self.tags = schema.tags
        self.description = schema.description
        self.generate_handler = schema.generate_handler
        self.executor = schema.executor
        self.middlewares_before = schema.middlewares_before
        self.middlewares_after = schema.middlewares_after
        self.extra = schema.extra
        self.awaiting = schema.awaiting
        self.generating = schema.generating
        self.func = schema.func
        self.__doc__ = schema.func.__doc__
        self.__name__ = schema.func.__name__
        self.__module__ = schema.func.__module__
        self.__qualname__ = schema.func.__qualname__
        self.__wrapped__ = schema.func

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_name!r}>"

    @property
    def app(self) -> QueueTasks:
        """The app that enqueues this task (for shared tasks: ``QTASKS["APP"]``)."""
        return self._owner.get_app()

    @property
    def is_run(self) -> bool:
        """Whether this object is the per-run ``self`` of an echo task in a worker."""
        return self.ctx is not None and self.ctx.task_uuid is not None

    def for_run(self, ctx: TaskContext) -> BaseTask:
        """Return the per-run object an echo task receives as ``self``."""
        # The per-run class follows the function, not the module-level object:
        # a sync function runs in a thread, where it cannot await add_task().
        run_cls = AsyncTask if self.schema.runs_async else SyncTask
        run = copy.copy(self)
        run.__class__ = run_cls
        run.ctx = ctx
        return run

    def _target(self, args: tuple[Any, ...], task_name: str | None) -> tuple[str, tuple[Any, ...]]:
        """Return the task to enqueue and its arguments.

        On a per-run object ``add_task("subtask", 123)`` enqueues ``subtask`` (the
        seeds' nested form); ``task_name=`` (upstream's form) wins when given.
        """
        if task_name is not None:
            return task_name, args
        if self.is_run:
            if not args or not isinstance(args[0], str):
                raise TaskNotRegistered(
                    "Inside a running task, add_task() takes the task name first: "
                    "self.add_task('subtask', 123) or self.add_task(123, task_name='subtask')"
                )
            return args[0], args[1:]
        return self.task_name, args

    def enqueue(
        self,
        *args: Any,
        priority: int | None = None,
        timeout: float | None = None,
        task_name: str | None = None,
        eta: datetime | None = None,
        countdown: float | None = None,
        unique_key: str | None = None,
        unique_for: float | None = None,
        **kwargs: Any,
    ) -> Task | None:
        """Enqueue a run; with ``timeout`` wait for its end (``None`` on expiry); ``eta``/``countdown`` delay it."""
        name, call_args = self._target(args, task_name)
        return self.app.add_task(
            name,
            *call_args,
            priority=priority,
            timeout=timeout,
            eta=eta,
            countdown=countdown,
            unique_key=unique_key,
            unique_for=unique_for,
            **kwargs,
        )

    async def aenqueue(
        self,
        *args: Any,
        priority: int | None = None,
        timeout: float | None = None,
        task_name: str | None = None,
        eta: datetime | None = None,
        countdown: float | None = None,
        unique_key: str | None = None,
        unique_for: float | None = None,
        **kwargs: Any,
    ) -> Task | None:
        """Async twin of :meth:`enqueue`."""
        name, call_args = self._target(args, task_name)
        return await self.app.aadd_task(
            name,
            *call_args,
            priority=priority,
            timeout=timeout,
            eta=eta,
            countdown=countdown,
            unique_key=unique_key,
            unique_for=unique_for,
            **kwargs,
        )

    def __call__(
        self,
        *args: Any,
        priority: int | None = None,
        timeout: float | None = None,
        eta: datetime | None = None,
        countdown: float | None = None,
        unique_key: str | None = None,
        unique_for: float | None = None,
        **kwargs: Any,
    ) -> BaseTaskCls:
        """Build the call without enqueueing it; ``.add_task()`` (or ``app.add_tasks``) enqueues it later."""
        cls = AsyncTaskCls if isinstance(self, AsyncTask) else SyncTaskCls
        return cls(
            task_name=self.task_name,
            priority=self.priority if priority is None else priority,
            timeout=timeout,
            eta=eta,
            countdown=countdown,
            unique_key=unique_key,
            unique_for=unique_for,
            args=args,
            kwargs=kwargs,
            _task=self,
        )


class SyncTask(BaseTask):
    """A task whose ``add_task`` blocks (sync functions)."""

    add_task = BaseTask.enqueue


class AsyncTask(BaseTask):
    """A task whose ``add_task`` is awaitable (``async def`` functions, ``awaiting=True``)."""

    add_task = BaseTask.aenqueue


@dataclass(kw_only=True)
class BaseTaskCls:
    """A prebuilt call: everything needed to enqueue the task later."""

    task_name: str
    priority: int | None
    timeout: float | None
    eta: datetime | None = None
    countdown: float | None = None
    unique_key: str | None = None
    unique_for: float | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    _task: BaseTask = field(repr=False)

    def _call(self) -> dict[str, Any]:
        return {
            "priority": self.priority,
            "timeout": self.timeout,
            "eta": self.eta,
            "countdown": self.countdown,
            "unique_key": self.unique_key,
            "unique_for": self.unique_for,
            "task_name": self.task_name,
            **self.kwargs,
        }

    def enqueue(self) -> Task | None:
        return self._task.enqueue(*self.args, **self._call())

    async def aenqueue(self) -> Task | None:
        return await self._task.aenqueue(*self.args, **self._call())


class SyncTaskCls(BaseTaskCls):
    add_task = BaseTaskCls.enqueue


class AsyncTaskCls(BaseTaskCls):
    add_task = BaseTaskCls.aenqueue
