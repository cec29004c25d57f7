"""A registered task's definition: ``TaskExecSchema``, built from decorator parameters (pure, no I/O)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..exceptions import InvalidTaskDefinition
from .executors import BaseTaskExecutor
from .middleware import TaskMiddleware


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


def generating_kind(func: Callable[..., Any]) -> Literal["sync", "async", False]:
    """Return ``"sync"``/``"async"`` for generator functions, else ``False``."""
    if inspect.isasyncgenfunction(func):
        return "async"
    if inspect.isgeneratorfunction(func):
        return "sync"
    return False


def build_schema(
    func: Callable[..., Any],
    *,
    name: str | None,
    priority: int,
    echo: bool = False,
    max_time: float | None = None,
    retry: int | None = None,
    retry_on_exc: list[type[BaseException]] | None = None,
    decode: Callable[[Any], Any] | None = None,
    tags: list[str] | None = None,
    description: str | None = None,
    generate_handler: Callable[[Any], Any] | None = None,
    executor: type | None = None,
    middlewares_before: list[type] | None = None,
    middlewares_after: list[type] | None = None,
    awaiting: bool | None = None,
    extra: dict[str, Any] | None = None,
) -> TaskExecSchema:
    """Validate the parameters of ``@task`` and build the schema; raise ``InvalidTaskDefinition``."""
    if not callable(func):
        raise InvalidTaskDefinition(f"@task needs a function, got {func!r}")
    label = _task_name(func, name)
    _check(isinstance(priority, int) and not isinstance(priority, bool), label, "priority must be an int")
    _check(isinstance(echo, bool), label, "echo must be a bool")
    _check(max_time is None or _positive_number(max_time), label, "max_time must be a positive number")
    _check(retry is None or (_int(retry) and retry >= 0), label, "retry must be an int >= 0")
    _check_classes(retry_on_exc, BaseException, label, "retry_on_exc")
    for option, value in (("decode", decode), ("generate_handler", generate_handler)):
        _check(value is None or callable(value), label, f"{option} must be callable")
    _check(tags is None or _str_list(tags), label, "tags must be a list of strings")
    _check(description is None or isinstance(description, str), label, "description must be a string")
    _check_executor(executor, label)
    _check_classes(middlewares_before, TaskMiddleware, label, "middlewares_before")
    _check_classes(middlewares_after, TaskMiddleware, label, "middlewares_after")
    extra = dict(extra or {})
    _check("queue" not in extra or isinstance(extra["queue"], str), label, "queue must be a string")
    return TaskExecSchema(
        name=label,
        priority=priority,
        func=func,
        awaiting=bool(awaiting) if awaiting is not None else _is_async(func),  # = schema.runs_async
        generating=generating_kind(func),
        echo=echo,
        max_time=float(max_time) if max_time is not None else None,
        retry=retry,
        retry_on_exc=list(retry_on_exc) if retry_on_exc else None,
        decode=decode,
        tags=list(tags) if tags else None,
        description=description,
        generate_handler=generate_handler,
        executor=executor,
        middlewares_before=list(middlewares_before or []),
        middlewares_after=list(middlewares_after or []),
        extra=extra,
    )


def _task_name(func: Callable[..., Any], name: str | None) -> str:
    """``name``, else the function's own; a caller may pass anything, so check it is a string."""
    label: object = name or getattr(func, "__name__", repr(func))
    if isinstance(label, str) and label != "":
        return label
    raise InvalidTaskDefinition(f"Task {label!r}: name must be a non-empty string")


def _is_async(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def dotted_path(obj: Any) -> str:
    """Return ``module.qualname`` of a function or class ('' for None)."""
    if obj is None:
        return ""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _check(ok: bool, label: str, message: str) -> None:
    if not ok:
        raise InvalidTaskDefinition(f"Task {label!r}: {message}")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _str_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


def _check_classes(value: Any, base: type, label: str, option: str) -> None:
    if value is None:
        return
    ok = isinstance(value, list | tuple) and all(isinstance(v, type) and issubclass(v, base) for v in value)
    _check(ok, label, f"{option} must be a list of {base.__name__} subclasses")


def _check_executor(executor: Any, label: str) -> None:
    if executor is not None:
        ok = isinstance(executor, type) and issubclass(executor, BaseTaskExecutor)
        _check(ok, label, "executor must be a BaseTaskExecutor subclass")
