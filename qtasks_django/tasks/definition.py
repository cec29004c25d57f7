"""A registered task's definition: ``TaskExecSchema``, built from decorator parameters (pure, no I/O)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from ..exceptions import InvalidTaskDefinition
from ..limits import (
    DURATION_MAX,
    INT_MAX,
    INT_MIN,
    TASK_NAME_MAX,
    int_in_range,
    queue_name_problem,
    unstorable_text,
)
from ..timing import InvalidTiming, Timing
from .executors import BaseTaskExecutor
from .flow import FlowControl, declare
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
    schedule: str | timedelta | None = None
    """``@task(schedule=...)``: a cron expression or an interval (synced into a ``Schedule``)."""
    flow: FlowControl = field(default_factory=FlowControl)
    """Unique tasks, concurrency and rate limits (``tasks.flow``; docs/flow-control.md)."""
    takes_context: bool = False
    """The runtime passes the first parameter (Django's ``TaskContext``): callers never give it."""

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
    schedule: str | timedelta | None = None,
    unique: bool = False,
    unique_while: str | None = None,
    unique_for: float | timedelta | None = None,
    concurrency_limit: int | None = None,
    concurrency_key: Any = None,
    rate_limit: str | None = None,
    rate_key: Any = None,
    extra: dict[str, Any] | None = None,
    takes_context: bool = False,
) -> TaskExecSchema:
    """Validate the parameters of ``@task`` and build the schema; raise ``InvalidTaskDefinition``."""
    if not callable(func):
        raise InvalidTaskDefinition(f"@task needs a function, got {func!r}")
    label = _task_name(func, name)
    _check(int_in_range(priority), label, f"priority must be an int from {INT_MIN} to {INT_MAX}")
    _check(isinstance(echo, bool), label, "echo must be a bool")
    _check(not echo or _takes_first_argument(func), label, "echo=True needs a first parameter for the task")
    _check(
        max_time is None or _duration(max_time),
        label,
        f"max_time must be a number of seconds in (0, {DURATION_MAX}]",
    )
    _check(retry is None or int_in_range(retry, 0), label, f"retry must be an int from 0 to {INT_MAX}")
    _check_classes(retry_on_exc, BaseException, label, "retry_on_exc")
    for option, value in (("decode", decode), ("generate_handler", generate_handler)):
        _check(value is None or callable(value), label, f"{option} must be callable")
    _check(tags is None or _str_list(tags), label, "tags must be a list of strings")
    for tag in tags or ():
        problem = unstorable_text(tag)
        _check(problem is None, label, f"the tag {tag!r} {problem}")
    _check(description is None or isinstance(description, str), label, "description must be a string")
    _check_executor(executor, label)
    _check_classes(middlewares_before, TaskMiddleware, label, "middlewares_before")
    _check_classes(middlewares_after, TaskMiddleware, label, "middlewares_after")
    if schedule is not None:
        try:
            Timing.of(schedule)
        except InvalidTiming as exc:
            raise InvalidTaskDefinition(f"Task {label!r}: schedule: {exc}") from None
    extra = dict(extra or {})
    if "queue" in extra:
        _check_queue(extra["queue"], label)
    flow = declare(
        label,
        _parameters(func, echo or takes_context),
        unique=unique,
        unique_while=unique_while,
        unique_for=unique_for,
        concurrency_limit=concurrency_limit,
        concurrency_key=concurrency_key,
        rate_limit=rate_limit,
        rate_key=rate_key,
    )
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
        schedule=schedule,
        flow=flow,
        extra=extra,
        takes_context=takes_context,
    )


def _task_name(func: Callable[..., Any], name: str | None) -> str:
    """``name``, else the function's own; a caller may pass anything, so check it is a string."""
    label: object = name or getattr(func, "__name__", repr(func))
    if not isinstance(label, str) or label == "":
        raise InvalidTaskDefinition(f"Task {label!r}: name must be a non-empty string")
    shown = label if len(label) <= 80 else f"{label[:77]}..."
    if len(label) > TASK_NAME_MAX:
        raise InvalidTaskDefinition(
            f"Task {shown!r}: the name has {len(label)} characters, above the limit of {TASK_NAME_MAX}"
        )
    problem = unstorable_text(label)
    if problem:
        raise InvalidTaskDefinition(f"Task {shown!r}: the name {problem}")
    return label


def _check_queue(queue: Any, label: str) -> None:
    problem = queue_name_problem(queue)
    _check(problem is None, label, str(problem))


def _takes_first_argument(func: Callable[..., Any]) -> bool:
    # echo=True passes the task object as the first positional argument.
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature: let it be
        return True
    kinds = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    )
    return bool(parameters) and parameters[0].kind in kinds


def _parameters(func: Callable[..., Any], injected: bool) -> inspect.Signature | None:
    """The parameters a caller gives (without echo's task object or Django's context), for
    checking key templates."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    return signature.replace(parameters=params[1:]) if injected and params else signature


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


def _duration(value: Any) -> bool:
    # NaN fails both comparisons; inf fails the second.
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= DURATION_MAX


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
