"""Task middlewares: code run before or after a task's function."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from .executors import BaseTaskExecutor


class TaskMiddleware:
    """Base class of task middlewares; override ``__call__`` (sync or ``async def``).

    A before-middleware may read and replace ``self.task_executor.args`` /
    ``.kwargs``; an after-middleware may read and replace ``self.task_executor.result``.
    A new instance is built for every run.
    """

    name = "TaskMiddleware"

    def __init__(self, task_executor: BaseTaskExecutor) -> None:
        self.task_executor = task_executor

    @property
    def executor(self) -> BaseTaskExecutor:
        return self.task_executor

    def __call__(self) -> Any:
        return None


def load_global(paths: tuple[str, ...]) -> list[type[TaskMiddleware]]:
    """Import the middlewares named in ``QTASKS["MIDDLEWARES_BEFORE"/"_AFTER"]``."""
    return [import_string(path) for path in paths]
