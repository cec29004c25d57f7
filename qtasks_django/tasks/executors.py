"""Executors: how one task runs — middlewares, the function, generators, decoding.

One class serves sync functions, coroutines and both kinds of generators. It runs on
the worker's event-loop thread; sync code is handed to a thread through
``run.run_sync`` so that one slow sync task never blocks the others.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..conf import settings
from ..exceptions import ResultNotSerializable, TaskPluginTriggerError
from ..serialization import find_non_json
from .middleware import TaskMiddleware, load_global
from .retry import RetryDecision, decide

if TYPE_CHECKING:
    from .definition import TaskExecSchema
    from .run import TaskRun


class BaseTaskExecutor:
    """Run one task. Subclass and override any step; ``execute`` is the whole run.

    Attributes a middleware may change: ``args``, ``kwargs`` (before), ``result`` (after).
    """

    def __init__(self, *, task_func: TaskExecSchema, run: TaskRun) -> None:
        self.task_func = task_func
        self.run = run
        self.args: list[Any] = list(run.args)
        self.kwargs: dict[str, Any] = dict(run.kwargs)
        self.result: Any = None

    # upstream QTasks spelled these with a leading underscore
    _args = property(lambda self: self.args, lambda self, v: setattr(self, "args", v))
    _kwargs = property(lambda self: self.kwargs, lambda self, v: setattr(self, "kwargs", v))
    _result = property(lambda self: self.result, lambda self, v: setattr(self, "result", v))

    @property
    def middlewares_before(self) -> list[type[TaskMiddleware]]:
        return load_global(settings.MIDDLEWARES_BEFORE) + self.task_func.middlewares_before

    @property
    def middlewares_after(self) -> list[type[TaskMiddleware]]:
        return load_global(settings.MIDDLEWARES_AFTER) + self.task_func.middlewares_after

    async def execute(self) -> Any:
        """Run before-middlewares, the function, after-middlewares and ``decode``; return the value to store."""
        await self.run_middlewares(self.middlewares_before)
        try:
            self.result = await self.run_task()
        except TaskPluginTriggerError as exc:
            self.result = self.handle_plugin_error(exc)
        await self.run_middlewares(self.middlewares_after)
        return await self.decode(self.result)

    async def run_middlewares(self, middlewares: list[type[TaskMiddleware]]) -> None:
        for middleware_cls in middlewares:
            await self.call(middleware_cls(self))

    async def run_task(self) -> Any:
        """Call the function with the (possibly replaced) arguments, whatever its kind."""
        args = [self.run.echo_object, *self.args] if self.task_func.echo else self.args
        func = self.task_func.func
        if self.task_func.generating:
            return await self.run_generator(func(*args, **self.kwargs))
        return await self.call(func, *args, **self.kwargs)

    async def run_generator(self, generator: Any) -> Any:
        """Drive a generator: each yield goes through ``generate_handler``, is saved, and is sent back."""
        outputs: list[Any] = []
        sent: Any = None
        while True:
            done, value = await self._step(generator, sent)
            if done:
                return value if value is not None else outputs
            sent = await self.handle_yield(value)
            outputs.append(sent)

    async def _step(self, generator: Any, value: Any) -> tuple[bool, Any]:
        if inspect.isasyncgen(generator):
            try:
                return False, await generator.asend(value)
            except StopAsyncIteration:
                return True, None
        return await self.run.run_sync(_sync_step, generator, value)

    async def handle_yield(self, value: Any) -> Any:
        """Apply the handler to a yielded value and persist it as the next progress item."""
        handler = self.task_func.generate_handler
        output = await self.call(handler, value) if handler else value
        problem = find_non_json(output, "progress item")
        if problem:
            raise ResultNotSerializable(f"{problem}; a generate_handler must return JSON values")
        await self.run.save_progress(output)
        if self.run.ctx.stop_event.is_set():  # a cancel (or shutdown) asked for: stop at this step
            self.run.ctx.raise_stopped()
        return output

    def handle_plugin_error(self, exc: TaskPluginTriggerError) -> Any:
        """Ask ``app.on_plugin_error`` handlers for a result; re-raise if none gives one."""
        for handler in self.run.ctx.app._plugin_error_handlers:
            answer = handler(self.task_func.name, exc)
            if isinstance(answer, dict) and "result" in answer:
                return answer["result"]
        raise exc

    async def decode(self, result: Any) -> Any:
        """Apply the task's ``decode`` and check the value can be stored as JSON."""
        if self.task_func.decode is not None:
            result = await self.call(self.task_func.decode, result)
        problem = find_non_json(result, "result")
        if problem:
            raise ResultNotSerializable(f"{problem}; return JSON values or give the task a decode=")
        return result

    def retry_decision(
        self, exc: BaseException, *, attempts_left: int | None, attempt: int
    ) -> RetryDecision | None:
        """Return whether and when to run again after ``exc`` (see ``retry.decide``)."""
        return decide(
            exc,
            attempts_left=attempts_left,
            attempt=attempt,
            retry_on_exc=self.task_func.retry_on_exc,
            base=settings.RETRY_BACKOFF,
            maximum=settings.RETRY_BACKOFF_MAX,
            jitter=settings.RETRY_JITTER,
        )

    async def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call sync or async ``func``: coroutines are awaited here, sync code runs in a thread."""
        if _is_async_callable(func):
            return await func(*args, **kwargs)
        result = await self.run.run_sync(func, *args, **kwargs)
        if inspect.isawaitable(result):  # a sync callable that returned an awaitable
            result = await result
        return result


class TaskExecutor(BaseTaskExecutor):
    """The default executor."""


def _is_async_callable(func: Any) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        type(func).__call__ if callable(func) else None
    )


def _sync_step(generator: Any, value: Any) -> tuple[bool, Any]:
    # StopIteration cannot cross a thread/future boundary, so turn it into a value here.
    try:
        return False, generator.send(value)
    except StopIteration as stop:
        return True, stop.value
