"""``QTasksTask``: a Django task that also carries QTasks' own options (retries, limits, tags,
flow control)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .compat import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_PRIORITY, DEFAULT_TASK_QUEUE_NAME, Task


@dataclass(frozen=True, slots=True, kw_only=True)
class QTasksTask(Task):
    """The backend's ``task_class``: Django's ``Task`` plus the QTasks parameters it lacks.

    Django 6.1's ``@task(retry=3, max_time=30)`` passes these through; on 6.0 use
    :func:`task` from this module, which builds the same object.
    """

    retry: int | None = None
    """Attempts after the first one fails (``None``: fail at once)."""
    retry_on_exc: tuple[type[BaseException], ...] | None = None
    """Retry only on these exceptions (subclasses count); ``None``: any ``Exception``."""
    max_time: float | None = None
    """Seconds a run may take before the worker stops it (sync tasks are killed)."""
    tags: tuple[str, ...] | None = None
    description: str | None = None
    # Flow control, as on ``@shared_task`` (docs/flow-control.md); key templates name the
    # caller's arguments, never ``context``.
    unique: bool = False
    """One waiting (or running, see ``unique_while``) task per set of arguments."""
    unique_while: str | None = None
    """``"active"`` (``None``: the default) or ``"waiting"``: which states hold the key."""
    unique_for: float | timedelta | None = None
    """Seconds after the enqueue when the key is free again (``None``: while it waits or runs)."""
    concurrency_limit: int | None = None
    concurrency_key: str | Callable[..., Any] | None = None
    rate_limit: str | None = None
    rate_key: str | Callable[..., Any] | None = None

    def qtasks_options(self) -> dict[str, Any]:
        """The parameters ``build_schema`` takes, as QTasks' own ``@task`` spells them."""
        return {
            "retry": self.retry,
            "retry_on_exc": list(self.retry_on_exc) if self.retry_on_exc else None,
            "max_time": self.max_time,
            "tags": list(self.tags) if self.tags else None,
            "description": self.description,
            "unique": self.unique,
            "unique_while": self.unique_while,
            "unique_for": self.unique_for,
            "concurrency_limit": self.concurrency_limit,
            "concurrency_key": self.concurrency_key,
            "rate_limit": self.rate_limit,
            "rate_key": self.rate_key,
        }


def task(
    function: Callable[..., Any] | None = None,
    *,
    priority: int = DEFAULT_TASK_PRIORITY,
    queue_name: str = DEFAULT_TASK_QUEUE_NAME,
    backend: str = DEFAULT_TASK_BACKEND_ALIAS,
    takes_context: bool = False,
    **options: Any,
) -> Any:
    """Django's ``@task`` with QTasks' options, on Django 6.0 too: ``@task(retry=3, max_time=30)``.

    ``options`` are :class:`QTasksTask`'s fields (``retry``, ``retry_on_exc``,
    ``max_time``, ``tags``, ``description``, and flow control: ``unique``,
    ``concurrency_limit``, ``rate_limit``...); lists are stored as tuples (a task is frozen).
    """

    def wrapper(func: Callable[..., Any]) -> QTasksTask:
        frozen: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        return QTasksTask(
            func=func,
            priority=priority,
            queue_name=queue_name,
            backend=backend,
            takes_context=takes_context,
            **frozen,
        )

    return wrapper(function) if function is not None else wrapper
