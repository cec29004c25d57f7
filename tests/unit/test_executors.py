"""The executor without a database: one class for functions, coroutines and generators (executors.py).

``FakeRun`` stands in for ``runs.TaskRun``: ``run_sync`` calls the function where it is,
and ``save_progress`` appends to a list instead of writing a ``TaskProgress`` row.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.test import override_settings

from qtasks_django import (
    BaseTaskExecutor,
    QueueTasks,
    ResultNotSerializable,
    TaskContext,
    TaskExecutor,
    TaskMiddleware,
    TaskPluginTriggerError,
)
from qtasks_django.tasks.retry import RetryDecision

ORDER: list[str] = []


class FakeRun:
    """The parts of ``TaskRun`` an executor uses."""

    def __init__(self, app: QueueTasks, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args = list(args)
        self.kwargs = dict(kwargs)
        self.ctx = TaskContext(app=app, task_name=name)
        self.echo_object = object()
        self.progress: list[Any] = []

    async def run_sync(self, func, *args, **kwargs):
        return func(*args, **kwargs)

    async def save_progress(self, value: Any) -> None:
        self.progress.append(value)


async def execute(task, *args: Any, **kwargs: Any) -> tuple[Any, FakeRun]:
    run = FakeRun(task.app, task.task_name, args, kwargs)
    executor_cls = task.schema.executor or TaskExecutor
    result = await executor_cls(task_func=task.schema, run=run).execute()
    return result, run


@pytest.fixture(autouse=True)
def _clear_order():
    ORDER.clear()


# -- the function, whatever its kind --------------------------------------------------------------------------


async def test_sync_function_result_is_returned(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(name="unit_add")(lambda a, b: a + b)
    result, run = await execute(task, 2, b=3)
    assert result == 5
    assert run.progress == []


async def test_coroutine_result_is_returned(fresh_app: QueueTasks) -> None:
    @fresh_app.task
    async def unit_acoro(a, *, times=1):
        return [a] * times

    result, _ = await execute(unit_acoro, "x", times=2)
    assert result == ["x", "x"]


async def test_echo_task_receives_the_run_object_first(fresh_app: QueueTasks) -> None:
    @fresh_app.task(echo=True)
    def unit_echoed(self, x):
        return {"self_is_run_object": self is run_object, "x": x}

    run_object = None

    class CapturingRun(FakeRun):
        def __init__(self, *a, **kw):
            nonlocal run_object
            super().__init__(*a, **kw)
            run_object = self.echo_object

    run = CapturingRun(fresh_app, "unit_echoed", (4,), {})
    result = await TaskExecutor(task_func=unit_echoed.schema, run=run).execute()
    assert result == {"self_is_run_object": True, "x": 4}


# -- generators ---------------------------------------------------------------------------------------------------------


def h(value):
    return f"H({value})"


async def ah(value):
    return value * 10


async def test_generator_gets_the_handler_output_back_and_returns_it(fresh_app: QueueTasks) -> None:
    @fresh_app.task(generate_handler=h)
    def unit_mytask():
        step = yield "INIT"
        return step

    result, run = await execute(unit_mytask)
    assert result == "H(INIT)"
    assert run.progress == ["H(INIT)"]


async def test_generator_returning_none_results_in_the_handler_outputs(fresh_app: QueueTasks) -> None:
    @fresh_app.task(generate_handler=h)
    def unit_gen_list(n):
        # Not ``yield from range(n)``: handler outputs are sent back, and a range cannot take them.
        for i in range(n):  # noqa: UP028
            yield i

    result, run = await execute(unit_gen_list, 3)
    assert result == ["H(0)", "H(1)", "H(2)"]
    assert run.progress == ["H(0)", "H(1)", "H(2)"]


async def test_generator_without_handler_keeps_the_yielded_values(fresh_app: QueueTasks) -> None:
    @fresh_app.task
    def unit_plain_gen():
        got = yield {"step": 1}
        yield [got, 2]

    result, run = await execute(unit_plain_gen)
    assert result == [{"step": 1}, [{"step": 1}, 2]]
    assert run.progress == result


async def test_generator_yielding_nothing_results_in_an_empty_list(fresh_app: QueueTasks) -> None:
    @fresh_app.task(generate_handler=h)
    def unit_empty_gen():
        return
        yield  # pragma: no cover

    result, run = await execute(unit_empty_gen)
    assert result == []
    assert run.progress == []


async def test_async_generator_with_async_handler(fresh_app: QueueTasks) -> None:
    received = []

    @fresh_app.task(generate_handler=ah)
    async def unit_agen(n):
        for i in range(n):
            received.append((yield i))

    result, run = await execute(unit_agen, 3)
    assert result == [0, 10, 20]
    assert run.progress == [0, 10, 20]
    assert received == [0, 10, 20]


async def test_sync_handler_returning_an_awaitable_is_awaited(fresh_app: QueueTasks) -> None:
    @fresh_app.task(generate_handler=lambda value: ah(value))
    def unit_gen_awaitable_handler():
        got = yield 4
        return got + 1

    result, run = await execute(unit_gen_awaitable_handler)
    assert result == 41
    assert run.progress == [40]


async def test_generator_failing_midway_keeps_the_progress_made(fresh_app: QueueTasks) -> None:
    @fresh_app.task(generate_handler=h)
    def unit_gen_fails():
        yield 1
        raise ValueError("midway")

    run = FakeRun(fresh_app, "unit_gen_fails", (), {})
    with pytest.raises(ValueError, match="midway"):
        await TaskExecutor(task_func=unit_gen_fails.schema, run=run).execute()
    assert run.progress == ["H(1)"]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_non_json_handler_output_is_not_serializable(fresh_app: QueueTasks, kind: str) -> None:
    def sync_gen():
        yield 1
        yield 2

    async def async_gen():
        yield 1
        yield 2

    task = fresh_app.task(name="unit_bad_handler", generate_handler=lambda v: {v} if v == 2 else v)(
        sync_gen if kind == "sync" else async_gen
    )
    run = FakeRun(fresh_app, "unit_bad_handler", (), {})
    with pytest.raises(
        ResultNotSerializable, match=r"progress item: set \{2\}.*generate_handler must return JSON"
    ):
        await TaskExecutor(task_func=task.schema, run=run).execute()
    assert run.progress == [1]


# -- middlewares ----------------------------------------------------------------------------------------------------------


class DoubleArgs(TaskMiddleware):
    def __call__(self):
        ORDER.append("DoubleArgs")
        self.task_executor.args = [a * 2 for a in self.task_executor.args]


class AsyncDoubleArgs(TaskMiddleware):
    async def __call__(self):
        ORDER.append("AsyncDoubleArgs")
        self.executor.args = [a * 2 for a in self.executor.args]


class UpstreamDoubleArgs(TaskMiddleware):
    def __call__(self):
        self.task_executor._args = [a * 2 for a in self.task_executor._args]


class UpperKwargs(TaskMiddleware):
    def __call__(self):
        self.task_executor.kwargs = {k: v.upper() for k, v in self.task_executor.kwargs.items()}


class WrapResult(TaskMiddleware):
    def __call__(self):
        ORDER.append("WrapResult")
        self.task_executor.result = {"wrapped": self.task_executor.result}


class AsyncWrapResult(TaskMiddleware):
    async def __call__(self):
        self.task_executor.result = {"wrapped": self.task_executor.result}


class UpstreamWrapResult(TaskMiddleware):
    def __call__(self):
        self.task_executor._result = {"wrapped": self.task_executor._result}


class GlobalTag(TaskMiddleware):
    def __call__(self):
        ORDER.append("GlobalTag")
        self.task_executor.args = [*self.task_executor.args, "global"]


class TaskTag(TaskMiddleware):
    def __call__(self):
        ORDER.append("TaskTag")
        self.task_executor.args = [*self.task_executor.args, "task"]


class GlobalAfter(TaskMiddleware):
    def __call__(self):
        ORDER.append("GlobalAfter")


def _sync_identity(*args):
    return list(args)


async def _async_identity(*args):
    return list(args)


FUNCS = pytest.mark.parametrize("func", [_sync_identity, _async_identity], ids=["sync-task", "async-task"])


@FUNCS
@pytest.mark.parametrize("middleware", [DoubleArgs, AsyncDoubleArgs, UpstreamDoubleArgs])
async def test_before_middleware_replaces_the_arguments(fresh_app: QueueTasks, func, middleware) -> None:
    task = fresh_app.task(name="unit_mw_before", middlewares_before=[middleware])(func)
    result, _ = await execute(task, 1, 2)
    assert result == [2, 4]


async def test_before_middleware_replaces_the_keyword_arguments(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(name="unit_mw_kwargs", middlewares_before=[UpperKwargs])(lambda *, who: f"hi {who}")
    result, _ = await execute(task, who="ann")
    assert result == "hi ANN"


@FUNCS
@pytest.mark.parametrize("middleware", [WrapResult, AsyncWrapResult, UpstreamWrapResult])
async def test_after_middleware_replaces_the_result(fresh_app: QueueTasks, func, middleware) -> None:
    task = fresh_app.task(name="unit_mw_after", middlewares_after=[middleware])(func)
    result, _ = await execute(task, 1)
    assert result == {"wrapped": [1]}


async def test_before_middlewares_run_in_order(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(name="unit_mw_order", middlewares_before=[DoubleArgs, AsyncDoubleArgs])(
        _sync_identity
    )
    result, _ = await execute(task, 1)
    assert result == [4]
    assert ORDER == ["DoubleArgs", "AsyncDoubleArgs"]


async def test_middleware_gets_the_executor_of_the_run(fresh_app: QueueTasks) -> None:
    seen = []

    class Spy(TaskMiddleware):
        def __call__(self):
            seen.append((self.task_executor, self.executor))

    task = fresh_app.task(name="unit_mw_spy", middlewares_before=[Spy])(_sync_identity)
    run = FakeRun(fresh_app, "unit_mw_spy", (), {})
    executor = TaskExecutor(task_func=task.schema, run=run)
    await executor.execute()
    assert seen == [(executor, executor)]


@override_settings(
    QTASKS={
        "MIDDLEWARES_BEFORE": ["tests.unit.test_executors.GlobalTag"],
        "MIDDLEWARES_AFTER": ["tests.unit.test_executors.GlobalAfter"],
    }
)
async def test_global_middlewares_run_before_the_task_ones_and_do_not_pile_up(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(
        name="unit_mw_global", middlewares_before=[TaskTag], middlewares_after=[WrapResult]
    )(_sync_identity)
    first, _ = await execute(task, "x")
    second, _ = await execute(task, "y")

    assert first == {"wrapped": ["x", "global", "task"]}
    assert second == {"wrapped": ["y", "global", "task"]}
    assert ORDER == ["GlobalTag", "TaskTag", "GlobalAfter", "WrapResult"] * 2
    assert task.schema.middlewares_before == [TaskTag]


# -- decode and JSON results ---------------------------------------------------------------------------------------------


async def _async_str(value):
    return f"<{value}>"


@pytest.mark.parametrize(("decode", "expected"), [(str, "42"), (_async_str, "<42>")], ids=["sync", "async"])
async def test_decode_transforms_the_result(fresh_app: QueueTasks, decode, expected) -> None:
    task = fresh_app.task(name="unit_decoded", decode=decode)(lambda: 42)
    result, _ = await execute(task)
    assert result == expected


async def test_decode_runs_after_the_after_middlewares(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(
        name="unit_decode_last", decode=lambda r: sorted(r), middlewares_after=[WrapResult]
    )(lambda: 1)
    result, _ = await execute(task)
    assert result == ["wrapped"]


async def test_decode_can_make_a_non_json_result_storable(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(name="unit_decode_set", decode=sorted)(lambda: {3, 1, 2})
    result, _ = await execute(task)
    assert result == [1, 2, 3]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (object(), "result: object"),
        ({1, 2}, "result: set"),
        ({"when": b"x"}, "result['when']: bytes"),
        ([math.nan], "result[0]: nan"),
    ],
    ids=["object", "set", "nested-bytes", "nan"],
)
async def test_non_json_result_is_not_serializable(fresh_app: QueueTasks, value, fragment) -> None:
    task = fresh_app.task(name="unit_not_json")(lambda: value)
    with pytest.raises(ResultNotSerializable) as excinfo:
        await execute(task)
    assert str(excinfo.value).startswith(fragment)
    assert "return JSON values or give the task a decode=" in str(excinfo.value)


async def test_tuple_result_passes_as_json(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(name="unit_tuple")(lambda: (1, "a"))
    result, _ = await execute(task)
    assert list(result) == [1, "a"]


# -- plugin errors ----------------------------------------------------------------------------------------------------------


def _raise_plugin_error():
    raise TaskPluginTriggerError(code=7)


async def test_plugin_error_handler_turns_the_error_into_a_result(fresh_app: QueueTasks) -> None:
    calls = []

    @fresh_app.on_plugin_error
    def not_mine(task_name, exc):
        calls.append(("not_mine", task_name, exc.kwargs))
        return None

    @fresh_app.on_plugin_error
    def mine(task_name, exc):
        calls.append(("mine", task_name, exc.kwargs))
        return {"result": {"recovered": exc.kwargs["code"]}}

    task = fresh_app.task(name="unit_plugin", middlewares_after=[WrapResult])(_raise_plugin_error)
    result, _ = await execute(task)
    assert result == {"wrapped": {"recovered": 7}}
    assert calls == [("not_mine", "unit_plugin", {"code": 7}), ("mine", "unit_plugin", {"code": 7})]


async def test_plugin_error_from_ctx_in_an_echo_task_becomes_a_result(fresh_app: QueueTasks) -> None:
    fresh_app.on_plugin_error(lambda name, exc: {"result": f"{name}: {exc.kwargs['code']}"})

    @fresh_app.task(echo=True)
    def unit_plugin_ctx(self):
        self.ctx.plugin_error(code=9)

    run = FakeRun(fresh_app, "unit_plugin_ctx", (), {})
    run.echo_object = unit_plugin_ctx.for_run(run.ctx)
    result = await TaskExecutor(task_func=unit_plugin_ctx.schema, run=run).execute()
    assert result == "unit_plugin_ctx: 9"


async def test_plugin_error_is_raised_when_no_handler_answers(fresh_app: QueueTasks) -> None:
    fresh_app.on_plugin_error(lambda name, exc: None)
    fresh_app.on_plugin_error(lambda name, exc: {"no": "result key"})
    task = fresh_app.task(name="unit_plugin_unanswered")(_raise_plugin_error)
    with pytest.raises(TaskPluginTriggerError) as excinfo:
        await execute(task)
    assert excinfo.value.kwargs == {"code": 7}


async def test_plugin_error_is_raised_when_there_are_no_handlers(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(name="unit_plugin_no_handler")(_raise_plugin_error)
    with pytest.raises(TaskPluginTriggerError):
        await execute(task)


# -- custom executors and retry decisions --------------------------------------------------------------------------------------


class ShoutingExecutor(TaskExecutor):
    async def run_task(self):
        return str(await super().run_task()).upper()


async def test_executor_subclass_can_replace_a_step(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(name="unit_custom_exec", executor=ShoutingExecutor)(lambda who: f"hi {who}")
    result, _ = await execute(task, "ann")
    assert result == "HI ANN"


def test_default_executor_is_a_base_task_executor() -> None:
    assert issubclass(TaskExecutor, BaseTaskExecutor)


def test_retry_decision_follows_the_task_and_the_settings(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(name="unit_retry_decision", retry=2, retry_on_exc=[LookupError])(lambda: None)
    executor = TaskExecutor(task_func=task.schema, run=FakeRun(fresh_app, "unit_retry_decision", (), {}))

    assert executor.retry_decision(KeyError("k"), attempts_left=2, attempt=1) == RetryDecision(
        delay=0.0, attempts_left=1
    )
    assert executor.retry_decision(ValueError(), attempts_left=2, attempt=1) is None
    with override_settings(QTASKS={"RETRY_BACKOFF": 2, "RETRY_BACKOFF_MAX": 5, "RETRY_JITTER": False}):
        assert executor.retry_decision(KeyError("k"), attempts_left=1, attempt=3).delay == 5
