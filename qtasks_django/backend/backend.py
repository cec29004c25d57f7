"""``QTasksBackend``: Django's task backend API on our task table and ``qtasks_worker``.

A Django task becomes a QTasks task the first time the backend validates it (when
``@task`` builds it): its schema is registered under the function's dotted path, with
an executor that gives it Django's ``TaskContext``. Enqueueing is QTasks' own
``build_row`` and insert, in the caller's transaction; results are read from the rows.
"""

from __future__ import annotations

from typing import Any, ParamSpec, TypeVar, cast

from ..exceptions import InvalidTaskDefinition
from ..tasks.app import get_app, shared_registry
from ..tasks.definition import TaskExecSchema, build_schema
from ..tasks.enqueue import Call, build_row
from .compat import BaseTaskBackend, InvalidTask, Task, TaskResult, TaskResultDoesNotExist, task_signals
from .known import django_task, remember
from .results import chain_result, ready_result
from .running import DjangoTaskExecutor
from .task import QTasksTask

_P = ParamSpec("_P")
_R = TypeVar("_R")


class QTasksBackend(BaseTaskBackend):
    """Run ``django.tasks`` tasks on ``qtasks_worker``, with results, priorities and deferral.

    Priority: Django's ``p`` (-100..100, higher first) is stored as our ``-p`` (lower
    first), so Django's 0 runs alongside QTasks tasks of priority 0.
    """

    task_class = QTasksTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def validate_task(self, task: Task[..., Any]) -> None:
        """Refuse what Django refuses, and what QTasks refuses of its options; register the task."""
        super().validate_task(task)
        name = task.module_path
        existing = get_app().tasks.get(name)
        if existing is None:
            shared_registry.register(self.schema_for(task))
        elif existing.func is not task.func:
            raise InvalidTask(f"{name!r} is the name of another task already")
        remember(task)

    def schema_for(self, task: Task[..., Any]) -> TaskExecSchema:
        """Return the QTasks definition of ``task``, named by its dotted path."""
        options = task.qtasks_options() if isinstance(task, QTasksTask) else {}
        try:
            schema = build_schema(
                task.func,
                name=task.module_path,
                priority=qtasks_priority(task.priority),
                executor=DjangoTaskExecutor,
                extra={"queue": task.queue_name, "django_task": task.module_path, "backend": self.alias},
                takes_context=task.takes_context,  # key templates name the caller's arguments
                **options,
            )
        except InvalidTaskDefinition as exc:
            raise InvalidTask(str(exc)) from exc
        return schema

    def enqueue(self, task: Task[_P, _R], args: Any, kwargs: Any) -> TaskResult[_P, _R]:
        """Write the task's row in the caller's transaction and return its ``READY`` result."""
        self.validate_task(task)
        app = get_app()
        call = Call(
            task.module_path,
            tuple(args),
            dict(kwargs),
            priority=qtasks_priority(task.priority),
            eta=task.run_after,
            queue=task.queue_name,
        )
        [row] = app.queue.insert([build_row(app, call)])
        if row.existing is not None:
            # A unique task holds the key: nothing was written or enqueued (no signal); the
            # caller gets the holder's current result, whose id is its first attempt's.
            return cast("TaskResult[_P, _R]", self.get_result(str(row.existing.uuid)))
        result = ready_result(task, row, self.alias)
        task_signals.task_enqueued.send(type(self), task_result=result)
        return cast("TaskResult[_P, _R]", result)  # built from ``task``: the same parameters

    def get_result(self, result_id: str) -> TaskResult[..., Any]:
        """Return the current result of the task ``result_id`` names (any of its attempts' ids)."""
        chain = get_app().queue.attempts(result_id)
        if not chain:
            raise TaskResultDoesNotExist(result_id)
        task = django_task(chain[0].task_name)
        if task is None:
            raise TaskResultDoesNotExist(f"{result_id} is a QTasks task, not a Django one")
        first = chain[0]
        changes: dict[str, Any] = {"queue_name": first.queue, "backend": self.alias}
        if -100 <= first.priority <= 100:  # a row changed around the backend keeps the task's own
            changes["priority"] = -first.priority
        if first.eta > first.created_at:  # deferred: enqueue without run_after stores eta = created_at
            changes["run_after"] = first.eta
        return chain_result(task.using(**changes), chain, self.alias)


def qtasks_priority(priority: int) -> int:
    """Django's priority (higher runs first) as ours (lower runs first)."""
    return -int(priority)
