"""Django's Tasks framework on our backend and a real (in-process) worker: enqueue, results, runs."""

from __future__ import annotations

import pytest

pytest.importorskip(
    "qtasks_django.backend.compat", reason="needs django.tasks (Django 6.0+) or the django-tasks backport"
)

from datetime import timedelta

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from qtasks_django import app
from qtasks_django.backend import QTasksBackend
from qtasks_django.backend.compat import (
    TaskResultDoesNotExist,
    TaskResultMismatch,
    TaskResultStatus,
    task_backends,
    task_signals,
)
from qtasks_django.exceptions import InvalidTaskArguments
from qtasks_django.models import RegisteredTask, TaskRecord
from qtasks_django.queue.operations import retry_task
from tests.tasks import add
from tests.tasks_django import (
    dj_add,
    dj_async_double,
    dj_by_account,
    dj_context,
    dj_email,
    dj_fails,
    dj_flaky,
    dj_flaky_61,
    dj_unique,
    dj_urgent,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_enqueue_writes_a_ready_row_whose_uuid_is_the_result_id() -> None:
    result = dj_add.enqueue(2, b=3)

    record = TaskRecord.objects.get(pk=result.id)
    assert record.task_name == "tests.tasks_django.dj_add"
    assert (record.status, record.queue, record.priority) == ("new", "default", 0)
    assert (record.args, record.kwargs) == ([2], {"b": 3})
    assert result.status == TaskResultStatus.READY
    assert result.enqueued_at == record.created_at
    assert (result.started_at, result.finished_at, result.last_attempted_at) == (None, None, None)
    assert (result.args, result.kwargs, result.errors, result.worker_ids) == ([2], {"b": 3}, [], [])
    assert result.attempts == 0
    assert result.backend == "default" and result.task is dj_add
    with pytest.raises(ValueError, match="not finished"):
        _ = result.return_value


def test_a_rolled_back_enqueue_never_existed_and_never_runs(run_worker) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        result = dj_add.enqueue(1, 1)
        assert TaskRecord.objects.filter(pk=result.id).exists()  # visible inside the transaction
        raise RuntimeError("roll back")

    run_worker()

    assert not TaskRecord.objects.filter(pk=result.id).exists()
    with pytest.raises(TaskResultDoesNotExist):
        dj_add.get_result(result.id)


def test_arguments_are_checked_as_for_our_own_tasks_and_nothing_is_written() -> None:
    with pytest.raises(InvalidTaskArguments, match="missing a required argument"):
        dj_add.enqueue(1)
    with pytest.raises(InvalidTaskArguments, match="only JSON values"):
        dj_add.enqueue(1, object())
    assert not TaskRecord.objects.exists()


@pytest.mark.parametrize("result_id", ["9c1e1a7e-3f0a-4e8f-9a55-0f6a7b8c9d0e", "not a uuid", ""])
def test_an_unknown_id_has_no_result(result_id) -> None:
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result(result_id)


def test_a_qtasks_task_is_no_django_result_and_another_task_s_result_is_a_mismatch() -> None:
    ours = add.add_task(1, 2)
    with pytest.raises(TaskResultDoesNotExist, match="not a Django one"):
        task_backends["default"].get_result(str(ours.uuid))
    other = dj_fails.enqueue("x")
    with pytest.raises(TaskResultMismatch):
        dj_add.get_result(other.id)


def test_a_successful_run_refreshes_every_field(run_worker) -> None:
    result = dj_add.enqueue(2, 3)

    worker = run_worker()
    result.refresh()

    record = TaskRecord.objects.get(pk=result.id)
    assert result.status == TaskResultStatus.SUCCESSFUL and result.is_finished
    assert result.return_value == 5
    assert result.started_at == record.started_at == result.last_attempted_at
    assert result.finished_at == record.finished_at and result.finished_at >= result.started_at
    assert result.worker_ids == [worker.id] and result.attempts == 1
    assert result.errors == []
    fetched = dj_add.get_result(result.id)
    assert (fetched.status, fetched.return_value, fetched.worker_ids) == ("SUCCESSFUL", 5, [worker.id])


def test_a_failure_is_one_error_with_its_class_and_traceback(run_worker) -> None:
    result = dj_fails.enqueue("broken on purpose")

    run_worker()
    result.refresh()

    assert result.status == TaskResultStatus.FAILED and result.finished_at is not None
    [error] = result.errors
    assert error.exception_class_path == "builtins.ValueError"
    assert error.exception_class is ValueError
    assert "broken on purpose" in error.traceback and "dj_fails" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value


def test_retries_follow_the_chain_and_the_context_sees_each_attempt(run_worker) -> None:
    result = dj_flaky.enqueue(3)

    run_worker()
    result.refresh()

    chain = [TaskRecord.objects.get(pk=result.id)]
    while chain[-1].retry_child_uuid:
        chain.append(TaskRecord.objects.get(pk=chain[-1].retry_child_uuid))
    assert [r.status for r in chain] == ["retry", "retry", "success"]
    assert result.id == str(chain[0].uuid)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"attempt": 3, "errors": 2, "id": result.id}
    assert result.attempts == 3 and len(result.worker_ids) == 3
    assert [e.exception_class_path for e in result.errors] == ["builtins.ValueError"] * 2
    assert "attempt 1 fails" in result.errors[0].traceback
    assert "attempt 2 fails" in result.errors[1].traceback
    assert result.started_at == chain[0].started_at
    assert result.last_attempted_at == chain[-1].started_at
    assert result.finished_at == chain[-1].finished_at
    assert chain[0].tags == ["django"]
    # Any attempt's id names the same chain.
    assert task_backends["default"].get_result(str(chain[1].uuid)).id == result.id


def test_retries_exhausted_fail_with_one_error_per_attempt(run_worker) -> None:
    result = dj_flaky.enqueue(9)

    run_worker()
    result.refresh()

    assert result.status == TaskResultStatus.FAILED
    assert len(result.errors) == 3 and result.attempts == 3


@pytest.mark.skipif(dj_flaky_61 is None, reason="Django 6.0's @task takes no backend options")
def test_django_6_1_passes_qtasks_options_through_task(run_worker) -> None:
    result = dj_flaky_61.enqueue()

    run_worker()
    result.refresh()

    assert result.return_value == 2
    assert [e.exception_class_path for e in result.errors] == ["builtins.KeyError"]
    registered = app.tasks["tests.tasks_django.dj_flaky_61"]
    assert (registered.retry, registered.max_time, registered.runs_async) == (1, 30.0, True)


def test_the_context_of_a_first_run_is_attempt_one_running(run_worker) -> None:
    result = dj_context.enqueue(x=7)

    run_worker()
    result.refresh()

    assert result.return_value == {"attempt": 1, "id": result.id, "status": "RUNNING", "x": 7}


def test_priorities_run_higher_first_around_qtasks_priorities(run_worker) -> None:
    low = dj_urgent.using(priority=-50).enqueue("django -50")
    ours = add.add_task(0, 0)  # a QTasks task of priority 0
    same = dj_urgent.using(priority=0).enqueue("django 0")
    high = dj_urgent.enqueue("django 90")

    run_worker(concurrency=1)

    rows = {str(r.pk): r for r in TaskRecord.objects.all()}
    assert [rows[k].priority for k in (low.id, same.id, high.id)] == [50, 0, -90]
    order = sorted(rows, key=lambda k: rows[k].started_at)
    # Django 0 and our 0 are one priority, first in first out.
    assert order == [high.id, str(ours.uuid), same.id, low.id]


def test_run_after_defers_the_run(run_worker) -> None:
    later = timezone.now() + timedelta(hours=1)
    result = dj_add.using(run_after=later).enqueue(1, 2)

    run_worker()

    assert TaskRecord.objects.get(pk=result.id).eta == later
    fetched = dj_add.get_result(result.id)
    assert fetched.status == TaskResultStatus.READY and fetched.task.run_after == later
    assert dj_add.get_result(dj_add.enqueue(1, 1).id).task.run_after is None


def test_queue_name_is_our_queue(run_worker) -> None:
    result = dj_email.enqueue("a@example.com")
    assert TaskRecord.objects.get(pk=result.id).queue == "django_emails"

    run_worker(queues=["default"])
    assert dj_email.get_result(result.id).status == TaskResultStatus.READY

    run_worker(queues=["django_emails"])
    result.refresh()
    assert result.return_value == "sent to a@example.com"
    assert result.task.queue_name == "django_emails" and result.task.priority == 10


def test_a_cancel_is_shown_as_a_failure_with_the_cancel_error(run_worker) -> None:
    result = dj_add.enqueue(1, 2)
    assert app.cancel(result.id, "not needed") == "cancel"

    result.refresh()

    assert result.status == TaskResultStatus.FAILED
    [error] = result.errors
    assert error.exception_class_path == "qtasks_django.exceptions.TaskCancelError"
    assert "not needed" in error.traceback
    assert result.worker_ids == []


def test_the_admin_s_retry_continues_the_chain(run_worker) -> None:
    result = dj_fails.enqueue("again")
    run_worker()
    assert retry_task(result.id).acted

    result.refresh()
    assert result.status == TaskResultStatus.READY and len(result.errors) == 1

    run_worker()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert len(result.errors) == 2 and result.attempts == 2


def test_signals_are_sent_with_the_backend_class(run_worker) -> None:
    task_enqueued, task_started, task_finished = (
        task_signals.task_enqueued,
        task_signals.task_started,
        task_signals.task_finished,
    )
    seen = []

    def receiver(signal_name):
        def handle(sender, task_result, **kwargs):
            seen.append((signal_name, sender, task_result.id, task_result.status))

        return handle

    handlers = {name: receiver(name) for name in ("enqueued", "started", "finished")}
    task_enqueued.connect(handlers["enqueued"])
    task_started.connect(handlers["started"])
    task_finished.connect(handlers["finished"])
    try:
        ok = dj_add.enqueue(1, 1)
        bad = dj_fails.enqueue("x")
        run_worker(concurrency=1)
    finally:
        task_enqueued.disconnect(handlers["enqueued"])
        task_started.disconnect(handlers["started"])
        task_finished.disconnect(handlers["finished"])

    assert {sender for _, sender, _, _ in seen} == {QTasksBackend}
    for result, end in ((ok, "SUCCESSFUL"), (bad, "FAILED")):
        mine = [(name, status) for name, _, id_, status in seen if id_ == result.id]
        assert mine == [("enqueued", "READY"), ("started", "RUNNING"), ("finished", end)]


def test_django_tasks_are_registered_tasks_under_their_path(run_worker) -> None:
    run_worker()

    row = RegisteredTask.objects.get(name="tests.tasks_django.dj_email")
    assert (row.func, row.queue, row.priority) == ("tests.tasks_django.dj_email", "django_emails", -10)


def test_the_admin_lists_django_tasks_by_their_path(admin_client, run_worker) -> None:
    result = dj_email.enqueue("b@example.com")
    run_worker()

    tasks_page = admin_client.get(reverse("admin:qtasks_django_taskrecord_changelist")).content.decode()
    assert "tasks_django.dj_email" in tasks_page
    detail = admin_client.get(reverse("admin:qtasks_django_taskrecord_change", args=[result.id]))
    assert detail.status_code == 200 and "sent to b@example.com" in detail.content.decode()
    registered = admin_client.get(reverse("admin:qtasks_django_registeredtask_changelist")).content.decode()
    assert "tasks_django.dj_email" in registered


async def test_async_enqueue_get_and_refresh_and_the_function_runs_on_the_loop(background_worker) -> None:
    background_worker()
    result = await dj_async_double.aenqueue(21)
    assert result.status == TaskResultStatus.READY

    for _ in range(200):
        await result.arefresh()
        if result.is_finished:
            break
        await __import__("asyncio").sleep(0.05)

    assert result.return_value == {"double": 42, "on_loop": True}
    fetched = await dj_async_double.aget_result(result.id)
    assert fetched.status == TaskResultStatus.SUCCESSFUL and fetched.attempts == 1


def test_qtasks_tasks_send_no_django_signal_and_import_nothing(run_worker, monkeypatch) -> None:
    from qtasks_django.backend import known

    looked_up = []
    monkeypatch.setattr(known, "import_string", lambda path: looked_up.append(path))
    seen = []

    def handle(sender, task_result, **kwargs):
        seen.append(task_result.id)

    task_signals.task_started.connect(handle)
    task_signals.task_finished.connect(handle)
    try:
        add.add_task(1, 2)
        run_worker()
    finally:
        task_signals.task_started.disconnect(handle)
        task_signals.task_finished.disconnect(handle)

    assert seen == [] and looked_up == []


async def test_async_get_result_of_an_unknown_id_raises_and_of_a_known_one_reads_it() -> None:
    with pytest.raises(TaskResultDoesNotExist):
        await task_backends["default"].aget_result("9c1e1a7e-3f0a-4e8f-9a55-0f6a7b8c9d0e")
    result = await dj_add.aenqueue(1, b=2)
    fetched = await dj_add.aget_result(result.id)
    assert (fetched.id, fetched.status, fetched.args, fetched.kwargs) == (result.id, "READY", [1], {"b": 2})


def test_a_unique_enqueue_meeting_a_waiting_task_returns_its_result_and_enqueues_nothing() -> None:
    enqueued = []

    def on_enqueued(sender, task_result, **kwargs):
        enqueued.append(task_result.id)

    task_signals.task_enqueued.connect(on_enqueued)
    try:
        first = dj_unique.enqueue(7)
        again = dj_unique.enqueue(tenant_id=7)  # the same call, passed differently
        other = dj_unique.enqueue(8)
    finally:
        task_signals.task_enqueued.disconnect(on_enqueued)

    assert again.id == first.id and other.id != first.id
    assert again.status == TaskResultStatus.READY and again.args == [7]  # the call as first enqueued
    assert TaskRecord.objects.count() == 2
    assert enqueued == [first.id, other.id]
    # QTasks' own enqueue of the Django task says whether it made one.
    ours = app.add_task("tests.tasks_django.dj_unique", 7)
    assert (str(ours.uuid), ours.created) == (first.id, False)


def test_a_unique_task_s_retry_holds_the_key_for_the_first_result_and_an_ended_one_frees_it(
    run_worker,
) -> None:
    first = dj_unique.enqueue(7, fail=True)
    run_worker()
    assert retry_task(first.id).acted  # the new attempt holds the key

    again = dj_unique.enqueue(7, fail=True)
    assert again.id == first.id
    assert again.status == TaskResultStatus.READY and len(again.errors) == 1

    run_worker()
    assert dj_unique.enqueue(7, fail=True).id != first.id


def test_the_limit_keys_of_a_context_task_are_made_from_the_caller_s_arguments(run_worker) -> None:
    results = [dj_by_account.enqueue(42), dj_by_account.enqueue(account_id=42)]

    rows = TaskRecord.objects.filter(pk__in=[r.id for r in results])
    assert {
        (r.concurrency_key, r.concurrency_limit, r.rate_key, r.rate_limit, r.rate_period) for r in rows
    } == {("acct:42", 1, "partner:42", 100, 60.0)}
    run_worker()
    for result in results:
        result.refresh()
        assert result.return_value == {"attempt": 1, "account_id": 42}
