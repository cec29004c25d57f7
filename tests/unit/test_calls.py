"""Prebuilt calls and echo run objects: what calling a task object does, short of the database.

These tests run without database access, so any enqueue or query would fail them.
"""

from __future__ import annotations

import inspect
import uuid

import pytest

from qtasks_django import (
    AsyncTask,
    AsyncTaskCls,
    BaseTaskCls,
    InvalidTaskArguments,
    QueueTasks,
    SyncTask,
    SyncTaskCls,
    TaskContext,
    TaskNotRegistered,
)

CALLS: list[tuple[object, ...]] = []


def _sync_recorder(a, b, c=None):
    CALLS.append((a, b, c))
    return a


async def _async_recorder(a, b, c=None):
    CALLS.append((a, b, c))
    return a


TWINS = pytest.mark.parametrize(
    ("func", "call_cls"),
    [(_sync_recorder, SyncTaskCls), (_async_recorder, AsyncTaskCls)],
    ids=["sync", "async"],
)


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


@TWINS
def test_calling_a_task_builds_a_call_without_running_it(fresh_app: QueueTasks, func, call_cls) -> None:
    task = fresh_app.task(name="unit_prebuilt", priority=5)(func)

    call = task(1, 2, c=3, priority=0, timeout=None)

    assert type(call) is call_cls
    assert isinstance(call, BaseTaskCls)
    assert call.task_name == "unit_prebuilt"
    assert call.args == (1, 2)
    assert call.kwargs == {"c": 3}
    assert call.timeout is None
    assert CALLS == []


@TWINS
def test_explicit_priority_zero_stays_zero(fresh_app: QueueTasks, func, call_cls) -> None:
    task = fresh_app.task(name="unit_prio_zero_call", priority=5)(func)
    assert task(1, 2, priority=0).priority == 0


@TWINS
def test_call_without_priority_takes_the_task_priority(fresh_app: QueueTasks, func, call_cls) -> None:
    task = fresh_app.task(name="unit_prio_default_call", priority=5)(func)
    assert task(1, 2).priority == 5


@TWINS
def test_call_keeps_its_timeout(fresh_app: QueueTasks, func, call_cls) -> None:
    task = fresh_app.task(name="unit_timeout_call")(func)
    assert task(1, 2, timeout=2.5).timeout == 2.5


@TWINS
def test_add_task_of_a_call_is_awaitable_only_for_async_tasks(fresh_app: QueueTasks, func, call_cls) -> None:
    task = fresh_app.task(name="unit_call_face")(func)
    call = task(1, 2)
    assert inspect.iscoroutinefunction(call.add_task) is (call_cls is AsyncTaskCls)


# -- the per-run object of echo tasks ------------------------------------------------------------


def _echo_sync(self):
    return None


async def _echo_async(self):
    return None


def _echo_gen(self):
    yield None


async def _echo_agen(self):
    yield None


@pytest.mark.parametrize(
    ("func", "run_cls"),
    [(_echo_sync, SyncTask), (_echo_gen, SyncTask), (_echo_async, AsyncTask), (_echo_agen, AsyncTask)],
    ids=["def", "generator", "async-def", "async-generator"],
)
def test_run_object_class_follows_the_function(fresh_app: QueueTasks, func, run_cls) -> None:
    task = fresh_app.task(name="unit_echo_kind", echo=True, priority=2, retry=1, tag="x")(func)
    ctx = TaskContext(app=fresh_app, task_name="unit_echo_kind", task_uuid=uuid.uuid4())

    run = task.for_run(ctx)

    assert type(run) is run_cls
    assert run.ctx is ctx
    assert run.is_run
    assert (run.task_name, run.priority, run.echo, run.retry, run.extra) == (
        "unit_echo_kind",
        2,
        True,
        1,
        {"tag": "x"},
    )
    assert task.ctx is None
    assert not task.is_run


def test_each_run_gets_its_own_object(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(name="unit_echo_twice", echo=True)(_echo_sync)
    first = task.for_run(TaskContext(app=fresh_app, task_name="unit_echo_twice", task_uuid=uuid.uuid4()))
    second = task.for_run(TaskContext(app=fresh_app, task_name="unit_echo_twice", task_uuid=uuid.uuid4()))
    assert first is not second
    assert first.ctx.task_uuid != second.ctx.task_uuid


@pytest.fixture
def echo_run(fresh_app: QueueTasks):
    task = fresh_app.task(name="unit_echo_parent", echo=True)(_echo_sync)
    return task.for_run(TaskContext(app=fresh_app, task_name="unit_echo_parent", task_uuid=uuid.uuid4()))


def test_nested_add_task_takes_the_task_name_first(echo_run) -> None:
    # Validation fails on the name, before anything is written: the first argument is the name.
    with pytest.raises(TaskNotRegistered, match="No task named 'unit_subtask'"):
        echo_run.add_task("unit_subtask", 123)


def test_nested_add_task_accepts_upstreams_task_name_keyword(echo_run) -> None:
    with pytest.raises(TaskNotRegistered, match="No task named 'unit_subtask'"):
        echo_run.add_task(123, task_name="unit_subtask")


def test_nested_add_task_without_a_name_is_a_clear_error(echo_run) -> None:
    with pytest.raises(
        TaskNotRegistered, match=r"takes the task name first: self.add_task\('subtask', 123\)"
    ):
        echo_run.add_task(123)


def test_module_level_add_task_enqueues_the_task_itself(fresh_app: QueueTasks) -> None:
    task = fresh_app.task(name="unit_itself", echo=True)(_echo_sync)
    # "unit_other" is taken as an argument of unit_itself, which takes none besides self.
    with pytest.raises(InvalidTaskArguments, match=r"Task 'unit_itself'\(\): too many positional arguments"):
        task.add_task("unit_other")
