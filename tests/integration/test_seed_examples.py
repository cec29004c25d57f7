"""The seed examples (tests/tasks.py) run end to end by an in-process worker on the real database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qtasks_django import app
from qtasks_django.models import TaskLog, TaskProgress, TaskRecord
from tests.factories import TaskRecordFactory
from tests.integration.helpers import wait_for_threads_to_end
from tests.tasks import (
    actx_tour,
    add,
    agen,
    async_shared,
    async_subtask_parent,
    async_with_middlewares,
    cancels,
    ctx_tour,
    decoded,
    echo_sync,
    echo_task,
    exits,
    gen_fails,
    gen_list,
    mytask,
    not_json,
    plugin_fails,
    raises_base,
    routed,
    shared_func,
    subtask_parent,
    subtask_parent_upstream_form,
    sync_but_awaiting,
    too_slow,
    too_slow_sync,
    with_middlewares,
)
from tests.tasks_integration import it_emails, it_kwargs, it_logs_then_fails

pytestmark = pytest.mark.django_db(transaction=True)


def enqueue(task, *args, **kwargs):
    """Enqueue from sync test code, whether the task's add_task is sync or awaitable."""
    return app.add_task(task.task_name, *args, **kwargs)


def outcome(task) -> TaskRecord:
    return TaskRecord.objects.get(pk=task.uuid)


# -- plain results ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "args", "expected"),
    [
        pytest.param(add, (1, 2), 3, id="add"),
        pytest.param(shared_func, (), "Shared task", id="shared_task"),
        pytest.param(async_shared, (), "async shared task", id="async-shared"),
        pytest.param(sync_but_awaiting, ({"x": [1]},), {"x": [1]}, id="awaiting-sync"),
        pytest.param(routed, (1,), 2, id="sync-router"),
        pytest.param(decoded, (), "42", id="decode"),
        pytest.param(with_middlewares, (1, 2), {"wrapped": 6}, id="middlewares-sync"),
        pytest.param(async_with_middlewares, (5,), {"wrapped": 10}, id="middlewares-async"),
    ],
)
def test_results(run_worker, task, args, expected) -> None:
    enqueued = enqueue(task, *args)

    run_worker()

    record = outcome(enqueued)
    assert (record.status, record.returning, record.traceback) == ("success", expected, "")
    assert record.started_at <= record.finished_at
    assert record.lease_token is None and record.worker_id != ""


def test_async_router_task(run_worker) -> None:
    enqueued = app.add_task("arouted", 2)

    run_worker()

    assert outcome(enqueued).returning == 6


def test_keyword_arguments_reach_the_function(run_worker) -> None:
    enqueued = it_kwargs.add_task(1, b=9)

    run_worker()

    assert outcome(enqueued).returning == {"a": 1, "b": 9}


def test_a_worker_serving_one_queue_leaves_the_others(run_worker) -> None:
    mail = it_emails.add_task("ada@example.com")
    other = add.add_task(1, 2)

    run_worker(queues=["it_emails"])

    assert (outcome(mail).status, outcome(mail).returning) == ("success", "sent to ada@example.com")
    assert outcome(other).status == "new"


def test_priority_decides_run_order(run_worker) -> None:
    late = app.add_task("record_order", "late", priority=5)
    mid = app.add_task("record_order", "mid")
    early = app.add_task("record_order", "early", priority=-1)

    run_worker(concurrency=1)

    order = [r.returning for r in TaskRecord.objects.order_by("started_at")]
    assert order == ["early", "mid", "late"]
    assert {outcome(t).status for t in (late, mid, early)} == {"success"}


# -- echo and the task object --------------------------------------------------------------------


def test_echo_async_task_receives_its_async_task_object(run_worker) -> None:
    enqueued = enqueue(echo_task)

    run_worker()

    assert outcome(enqueued).returning == {
        "task_name": "echo_task",
        "priority": 0,
        "echo": True,
        "max_time": None,
        "retry": None,
        "class": "AsyncTask",
        "extra": {},
    }


def test_echo_sync_task_receives_its_sync_task_object(run_worker) -> None:
    enqueued = echo_sync.add_task(5)

    run_worker()

    record = outcome(enqueued)
    assert record.returning == {
        "class": "SyncTask",
        "uuid": str(record.uuid),
        "x": 5,
        "extra": {"note": "hi"},
    }
    assert record.priority == 3


def test_concurrent_runs_of_one_echo_task_get_their_own_object(run_worker) -> None:
    first, second = echo_sync.add_task(1), echo_sync.add_task(2)

    run_worker(concurrency=2)

    assert outcome(first).returning["uuid"] == str(first.uuid)
    assert outcome(second).returning["uuid"] == str(second.uuid)


# -- the context -----------------------------------------------------------------------------------


def test_ctx_members_in_a_sync_task(run_worker) -> None:
    enqueued = enqueue(ctx_tour)

    worker = run_worker()

    record = outcome(enqueued)
    assert record.status == "success", record.traceback
    assert record.returning == {
        "uuid": str(record.uuid),
        "meta_status": "process",
        "same": True,
        "config_priority": 0,
        "broker": "DatabaseQueue",
        "worker": type(worker).__name__,
        "app": "default",
    }


def test_get_logger_lines_are_stored_with_the_task(run_worker) -> None:
    enqueued = enqueue(ctx_tour)

    run_worker()

    lines = list(TaskLog.objects.filter(task_id=enqueued.uuid).values_list("level", "logger", "message"))
    assert lines == [("INFO", "qtasks_django.tasks.ctx_tour", "hello from ctx_tour")]


def test_log_lines_are_kept_when_the_task_fails(run_worker) -> None:
    enqueued = it_logs_then_fails.add_task()

    run_worker()

    assert outcome(enqueued).status == "error"
    lines = list(TaskLog.objects.filter(task_id=enqueued.uuid).values_list("level", "logger", "message"))
    assert lines == [
        ("INFO", "qtasks_django.tasks.it.custom", "first 1"),
        ("WARNING", "qtasks_django.tasks.it.custom", "second"),
    ]


def test_ctx_members_in_an_async_task(run_worker) -> None:
    enqueued = enqueue(actx_tour)

    run_worker()

    record = outcome(enqueued)
    assert (record.status, record.returning) == ("success", {"status": "process", "same": True})


def test_ctx_cancel_stores_the_reason(run_worker) -> None:
    enqueued = cancels.add_task("not today")

    run_worker()

    record = outcome(enqueued)
    assert (record.status, record.cancel_reason, record.returning) == ("cancel", "not today", None)


def test_ctx_plugin_error_without_a_handler_is_an_error(run_worker) -> None:
    enqueued = plugin_fails.add_task()

    run_worker()

    record = outcome(enqueued)
    assert record.status == "error"
    assert "TaskPluginTriggerError" in record.traceback


# -- nested tasks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parent", "arg", "child_args", "child_result"),
    [
        pytest.param(subtask_parent, 4, [4, 4], 8, id="seed-form"),
        pytest.param(subtask_parent_upstream_form, 4, [4, 1], 5, id="task_name-form"),
        pytest.param(async_subtask_parent, 3, [3, 2], 5, id="async"),
    ],
)
def test_nested_task_records_its_parent(run_worker, parent, arg, child_args, child_result) -> None:
    enqueued = enqueue(parent, arg)

    run_worker()

    record = outcome(enqueued)
    assert record.status == "success", record.traceback
    child = TaskRecord.objects.get(pk=record.returning)
    assert (child.task_name, child.args, child.parent_uuid) == ("add", child_args, record.uuid)
    assert (child.status, child.returning) == ("success", child_result)  # the same burst ran it
    assert record.parent_uuid is None


# -- generators ---------------------------------------------------------------------------------------


def test_generator_sends_the_handler_output_back(run_worker) -> None:
    enqueued = mytask.add_task()

    run_worker()

    record = outcome(enqueued)
    assert (record.status, record.returning) == ("success", "H(INIT)")
    assert list(TaskProgress.objects.filter(task=record).values_list("seq", "value")) == [(1, "H(INIT)")]
    assert app.get(record.uuid).progress == ["H(INIT)"]


def test_generator_without_a_return_value_returns_the_handler_outputs(run_worker) -> None:
    enqueued = gen_list.add_task(3)

    run_worker()

    record = outcome(enqueued)
    assert record.returning == ["H(0)", "H(1)", "H(2)"]
    assert list(TaskProgress.objects.filter(task=record).values_list("seq", "value")) == [
        (1, "H(0)"),
        (2, "H(1)"),
        (3, "H(2)"),
    ]


def test_async_generator_with_an_async_handler(run_worker) -> None:
    enqueued = enqueue(agen, 3)  # asserts inside that each yield receives the handler's output

    run_worker()

    record = outcome(enqueued)
    assert (record.status, record.returning) == ("success", [0, 10, 20]), record.traceback
    assert app.get(record.uuid).progress == [0, 10, 20]


def test_a_generator_failing_midway_keeps_its_progress(run_worker) -> None:
    enqueued = gen_fails.add_task()

    run_worker()

    record = outcome(enqueued)
    assert record.status == "error"
    assert "ValueError: midway" in record.traceback
    assert app.get(record.uuid).progress == ["H(1)"]


def test_a_generator_with_no_items(run_worker) -> None:
    enqueued = gen_list.add_task(0)

    run_worker()

    assert (outcome(enqueued).status, outcome(enqueued).returning) == ("success", [])
    assert not TaskProgress.objects.exists()


# -- failures end one task, never the worker ---------------------------------------------------------


def test_a_non_json_result_is_a_clear_error(run_worker) -> None:
    enqueued = not_json.add_task()

    run_worker()

    record = outcome(enqueued)
    assert (record.status, record.returning) == ("error", None)
    assert "ResultNotSerializable" in record.traceback
    assert "is not JSON-serialisable" in record.traceback


@pytest.mark.parametrize("task", [too_slow, too_slow_sync], ids=["async", "sync"])
def test_max_time_ends_the_task_in_error_and_frees_its_slot(run_worker, task) -> None:
    enqueued = enqueue(task)
    follower = add.add_task(1, 2)

    run_worker(concurrency=1)

    record = outcome(enqueued)
    assert record.status == "error"
    assert "TaskTimeoutError" in record.traceback
    assert "0.5 seconds" in record.traceback
    # max_time is 0.5 s and the function runs 2 s or more: the slot is free again within
    # about a second, and the single-slot worker runs the next task in it.
    assert (record.finished_at - record.started_at).total_seconds() < 1.5
    assert outcome(follower).returning == 3
    assert record.finished_at <= outcome(follower).started_at < record.started_at + timedelta(seconds=1.5)

    wait_for_threads_to_end(("qtasks-slot",))  # an abandoned sync function has now returned "never"
    assert (outcome(enqueued).status, outcome(enqueued).returning) == ("error", None)


@pytest.mark.parametrize(
    ("task", "error"),
    [(exits, "SystemExit: 3"), (raises_base, "KeyboardInterrupt")],
    ids=["SystemExit", "KeyboardInterrupt"],
)
def test_base_exceptions_end_the_task_and_the_worker_goes_on(run_worker, task, error) -> None:
    enqueued = task.add_task()
    after = add.add_task(1, 2, priority=1)  # runs after the bad task

    run_worker(concurrency=1)

    record = outcome(enqueued)
    assert record.status == "error"
    assert error in record.traceback
    assert (outcome(after).status, outcome(after).returning) == ("success", 3)


def test_an_unknown_task_name_in_a_row_ends_it_in_error(run_worker) -> None:
    row = TaskRecordFactory(task_name="nope", args=[])
    after = add.add_task(1, 2, priority=1)

    run_worker(concurrency=1)

    record = TaskRecord.objects.get(pk=row.pk)
    assert record.status == "error"
    assert "TaskNotRegistered" in record.traceback and "'nope'" in record.traceback
    assert record.finished_at is not None
    assert outcome(after).returning == 3


def test_a_row_whose_arguments_do_not_fit_ends_in_error(run_worker) -> None:
    row = TaskRecordFactory(task_name="add", args=[1])  # written by hand: enqueue would refuse it
    after = add.add_task(1, 2, priority=1)

    run_worker(concurrency=1)

    record = TaskRecord.objects.get(pk=row.pk)
    assert record.status == "error"
    assert "TypeError" in record.traceback
    assert outcome(after).returning == 3
