"""Enqueueing writes one validated row and returns a ``Task`` snapshot; bad input writes nothing."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from qtasks_django import (
    InvalidTaskArguments,
    PayloadTooLarge,
    QTasksError,
    SyncTaskCls,
    Task,
    TaskNotRegistered,
    app,
    signals,
)
from qtasks_django.models import TaskRecord
from tests.factories import TaskProgressFactory, TaskRecordFactory
from tests.integration.helpers import qtasks_settings
from tests.tasks import add, arouted, async_shared, echo_sync, routed, sync_but_awaiting
from tests.tasks_integration import it_emails, it_kwargs

pytestmark = pytest.mark.django_db


def test_add_task_returns_a_new_task_snapshot_and_writes_the_row() -> None:
    before = timezone.now()

    task = add.add_task(1, 2)

    assert isinstance(task, Task)
    assert isinstance(task.uuid, uuid.UUID)
    assert (task.task_name, task.status, task.priority, task.args, task.kwargs) == (
        "add",
        "new",
        0,
        [1, 2],
        {},
    )
    row = TaskRecord.objects.get(pk=task.uuid)
    assert (row.task_name, row.status, row.queue, row.args, row.priority) == (
        "add",
        "new",
        "default",
        [1, 2],
        0,
    )
    assert before <= row.created_at <= timezone.now()
    assert row.eta == row.created_at  # ready at once
    assert row.attempt == 1
    assert row.parent_uuid is None
    assert row.worker_id == "" and row.lease_token is None and row.started_at is None


def test_app_add_task_enqueues_by_name() -> None:
    task = app.add_task("add", 1, 2)

    assert task.status == "new"
    assert TaskRecord.objects.filter(pk=task.uuid, task_name="add", args=[1, 2]).exists()


def test_keyword_arguments_are_stored_apart_from_reserved_keywords() -> None:
    task = it_kwargs.add_task(1, b=5, priority=4)

    row = TaskRecord.objects.get(pk=task.uuid)
    assert (row.args, row.kwargs, row.priority) == ([1], {"b": 5}, 4)


def test_tuples_are_stored_as_lists() -> None:
    task = add.add_task((1, 2), [3])

    assert TaskRecord.objects.get(pk=task.uuid).args == [[1, 2], [3]]


def test_router_tasks_enqueue_through_the_app() -> None:
    task = routed.add_task(1)

    assert TaskRecord.objects.get(pk=task.uuid).task_name == "routed"


def test_a_task_declaring_a_queue_is_written_to_that_queue() -> None:
    task = it_emails.add_task("ada@example.com")

    assert task.queue == "it_emails"
    assert TaskRecord.objects.get(pk=task.uuid).queue == "it_emails"


def test_tags_of_the_task_are_copied_to_the_row() -> None:
    task = it_emails.add_task("ada@example.com")

    assert TaskRecord.objects.get(pk=task.uuid).tags == ["mail"]


@pytest.mark.django_db(transaction=True)
async def test_async_task_add_task_is_awaitable() -> None:
    task = await async_shared.add_task()

    assert task.status == "new"
    assert await TaskRecord.objects.filter(pk=task.uuid, task_name="async_shared").aexists()


@pytest.mark.django_db(transaction=True)
async def test_awaiting_shared_task_over_a_sync_function_is_awaitable() -> None:
    task = await sync_but_awaiting.add_task(7)

    assert (await TaskRecord.objects.aget(pk=task.uuid)).args == [7]


@pytest.mark.django_db(transaction=True)
async def test_async_router_task_add_task_is_awaitable() -> None:
    task = await arouted.add_task(2)

    assert (await TaskRecord.objects.aget(pk=task.uuid)).task_name == "arouted"


@pytest.mark.django_db(transaction=True)
async def test_app_aadd_task_enqueues_by_name() -> None:
    task = await app.aadd_task("add", 4, 5, priority=2)

    row = await TaskRecord.objects.aget(pk=task.uuid)
    assert (row.args, row.priority, row.status) == ([4, 5], 2, "new")


def test_calling_a_task_builds_a_call_without_enqueueing() -> None:
    call = add(1, 2, priority=4)

    assert isinstance(call, SyncTaskCls)
    assert TaskRecord.objects.count() == 0
    task = call.add_task()
    row = TaskRecord.objects.get(pk=task.uuid)
    assert (row.task_name, row.args, row.priority) == ("add", [1, 2], 4)


@pytest.mark.django_db(transaction=True)
async def test_prebuilt_call_of_an_async_task_is_awaitable() -> None:
    call = async_shared()

    task = await call.add_task()

    assert (await TaskRecord.objects.aget(pk=task.uuid)).task_name == "async_shared"


def test_priority_defaults_to_the_declared_one() -> None:
    assert echo_sync.add_task(1).priority == 3
    assert add.add_task(1, 2).priority == 0


def test_priority_override_is_stored() -> None:
    task = echo_sync.add_task(1, priority=7)

    assert TaskRecord.objects.get(pk=task.uuid).priority == 7


def test_explicit_priority_zero_stays_zero() -> None:
    direct = echo_sync.add_task(1, priority=0)
    prebuilt = echo_sync(1, priority=0).add_task()
    by_name = app.add_task("echo_sync", 1, priority=0)

    for task in (direct, prebuilt, by_name):
        assert TaskRecord.objects.get(pk=task.uuid).priority == 0


def test_negative_priority_is_allowed() -> None:
    assert TaskRecord.objects.get(pk=add.add_task(1, 2, priority=-5).uuid).priority == -5


@pytest.mark.parametrize(
    ("enqueue", "error", "message"),
    [
        pytest.param(
            lambda: app.add_task("nope", 1), TaskNotRegistered, "No task named 'nope'", id="unknown-name"
        ),
        pytest.param(lambda: app.add_task(42), TaskNotRegistered, "must be a string", id="name-not-a-string"),
        pytest.param(
            lambda: add.add_task(1), InvalidTaskArguments, "missing a required argument", id="too-few"
        ),
        pytest.param(
            lambda: add.add_task(1, 2, 3), InvalidTaskArguments, "too many positional", id="too-many"
        ),
        pytest.param(
            lambda: add.add_task(1, 2, c=3), InvalidTaskArguments, "unexpected keyword", id="unknown-kw"
        ),
        pytest.param(
            lambda: echo_sync.add_task(), InvalidTaskArguments, "missing a required", id="echo-self-excluded"
        ),
        pytest.param(lambda: add.add_task(object(), 1), InvalidTaskArguments, "not JSON", id="object"),
        pytest.param(
            lambda: add.add_task({1: "a"}, 1), InvalidTaskArguments, "key 1 is not a string", id="int-key"
        ),
        pytest.param(lambda: add.add_task(math.nan, 1), InvalidTaskArguments, "not valid JSON", id="nan"),
        pytest.param(lambda: add.add_task({1, 2}, 1), InvalidTaskArguments, "not JSON", id="set"),
        pytest.param(lambda: add.add_task(b"x", 1), InvalidTaskArguments, "not JSON", id="bytes"),
        pytest.param(
            lambda: it_kwargs.add_task(1, b=object()), InvalidTaskArguments, "kwargs", id="kwarg-value"
        ),
        pytest.param(
            lambda: add.add_task(1, 2, priority="high"), InvalidTaskArguments, "priority", id="priority-str"
        ),
        pytest.param(
            lambda: add.add_task(1, 2, priority=True), InvalidTaskArguments, "priority", id="priority-bool"
        ),
        pytest.param(lambda: add.add_task(1, 2, timeout=-1), QTasksError, "timeout", id="negative-timeout"),
        pytest.param(lambda: add.add_task(1, 2, timeout="5"), QTasksError, "timeout", id="timeout-str"),
        pytest.param(lambda: add(1).add_task(), InvalidTaskArguments, "missing", id="prebuilt-too-few"),
    ],
)
def test_bad_input_raises_a_clear_error_and_writes_no_row(enqueue, error, message) -> None:
    TaskRecordFactory()  # an unrelated row, to show the count is compared, not just zero
    before = TaskRecord.objects.count()

    with pytest.raises(error, match=message):
        enqueue()

    assert TaskRecord.objects.count() == before


def test_oversize_payload_raises_and_writes_no_row() -> None:
    with qtasks_settings(MAX_PAYLOAD_BYTES=100):
        add.add_task("x" * 40, "y" * 40)  # under the cap: accepted
        before = TaskRecord.objects.count()

        with pytest.raises(PayloadTooLarge, match=r"above the cap of 100"):
            add.add_task("x" * 200, 1)

        assert TaskRecord.objects.count() == before == 1


def test_payload_cap_counts_keyword_arguments() -> None:
    with qtasks_settings(MAX_PAYLOAD_BYTES=100):
        with pytest.raises(PayloadTooLarge):
            it_kwargs.add_task(1, b="z" * 200)

    assert TaskRecord.objects.count() == 0


@pytest.mark.django_db(transaction=True)
async def test_async_enqueue_validates_too() -> None:
    with pytest.raises(TaskNotRegistered):
        await app.aadd_task("nope")
    with pytest.raises(InvalidTaskArguments):
        await arouted.add_task()

    assert await TaskRecord.objects.acount() == 0


# -- reading tasks back ----------------------------------------------------------------


def test_app_get_returns_the_task_snapshot() -> None:
    task = add.add_task(1, 2)

    got = app.get(task.uuid)

    assert isinstance(got, Task)
    assert (got.uuid, got.status, got.args, got.task_name) == (task.uuid, "new", [1, 2], "add")
    assert app.get(str(task.uuid)) == got  # a string uuid works too


def test_app_get_includes_progress_items_in_order() -> None:
    record = TaskRecordFactory(task_name="gen_list", args=[2], succeeded=True)
    TaskProgressFactory(task=record, seq=2, value="second")
    TaskProgressFactory(task=record, seq=1, value="first")

    assert app.get(record.uuid).progress == ["first", "second"]


@pytest.mark.parametrize("key", ["garbage", "", None, 12, "1234"])
def test_app_get_with_something_that_is_not_a_uuid_returns_none(key) -> None:
    TaskRecordFactory()

    assert app.get(key) is None


def test_app_get_of_an_unknown_uuid_returns_none() -> None:
    TaskRecordFactory()

    assert app.get(uuid.uuid4()) is None


def test_snapshot_reports_the_finished_fields() -> None:
    record = TaskRecordFactory(
        succeeded=True, returning={"total": 3}, started_at=timezone.now() - timedelta(seconds=2), tags=["t"]
    )

    got = app.get(record.uuid)

    assert (got.status, got.returning, got.tags, got.traceback) == ("success", {"total": 3}, ["t"], None)
    assert got.finished_at >= got.started_at


@pytest.mark.django_db(transaction=True)
async def test_app_aget() -> None:
    task = await app.aadd_task("add", 1, 2)

    got = await app.aget(task.uuid)

    assert (got.uuid, got.status) == (task.uuid, "new")
    assert await app.aget("garbage") is None
    assert await app.aget(uuid.uuid4()) is None


# Text that COPY's and JSON's escaping must both carry through unchanged.
AWKWARD = 'tab\there, line\nbreak, back\\slash, "quotes", \r, é, 漢字, 🎉'


@pytest.mark.parametrize("how", ["add_task", "add_tasks"])
def test_awkward_text_round_trips_through_both_ways_of_writing(how) -> None:
    # One task goes through the prepared INSERT, several through COPY.
    if how == "add_task":
        tasks = [it_kwargs.add_task(AWKWARD, b={"k": [AWKWARD, (1, 2)]})]
    else:
        tasks = app.add_tasks([it_kwargs(AWKWARD, b={"k": [AWKWARD, (1, 2)]}) for _ in range(3)])

    for task in tasks:
        row = TaskRecord.objects.get(pk=task.uuid)
        assert row.args == task.args == [AWKWARD]
        assert row.kwargs == task.kwargs == {"b": {"k": [AWKWARD, [1, 2]]}}


def test_add_tasks_writes_every_call_and_returns_snapshots_in_order() -> None:
    calls = [add(1, 2), it_emails("ada@example.com"), it_kwargs(3, b=4, priority=7), add(5, 6, countdown=60)]

    tasks = app.add_tasks(calls)

    assert [(t.task_name, t.args, t.kwargs, t.priority, t.queue, t.tags) for t in tasks] == [
        ("add", [1, 2], {}, 0, "default", []),
        ("it_emails", ["ada@example.com"], {}, 0, "it_emails", ["mail"]),
        ("it_kwargs", [3], {"b": 4}, 7, "default", []),
        ("add", [5, 6], {}, 0, "default", []),
    ]
    for task in tasks:
        # The snapshot is the row as written, field for field.
        assert Task.from_record(TaskRecord.objects.get(pk=task.uuid)) == task
    assert tasks[3].eta >= tasks[3].created_at + timedelta(seconds=60)


def test_add_tasks_with_one_bad_call_writes_none_of_them() -> None:
    with pytest.raises(InvalidTaskArguments, match="only JSON values"):
        app.add_tasks([add(1, 2), add(3, object())])

    assert not TaskRecord.objects.exists()


def test_the_snapshot_does_not_change_when_the_caller_changes_its_arguments() -> None:
    items, options = [1, 2], {"b": [3]}
    task = it_kwargs.add_task(items, **options)
    flat = {"b": 5}
    flat_task = it_kwargs.add_task(1, **flat)

    items.append(99)
    options["b"].append(99)
    flat["b"] = 6

    assert task.args == [[1, 2]] and task.kwargs == {"b": [3]}
    assert flat_task.kwargs == {"b": 5}


def test_task_enqueued_receivers_get_the_record_of_each_row() -> None:
    received = []

    def on_enqueued(sender, uuid, task, **kwargs):
        received.append((sender, uuid, task.pk, task.args, task.status))

    signals.task_enqueued.connect(on_enqueued)
    try:
        tasks = app.add_tasks([add(1, 2), add(3, 4)])
        single = add.add_task(5, 6)
    finally:
        signals.task_enqueued.disconnect(on_enqueued)

    assert received == [("add", t.uuid, t.uuid, t.args, "new") for t in [*tasks, single]]
