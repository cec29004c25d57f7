"""The operations behind the admin's actions, on the real database: each acts once, and says so."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from qtasks_django import operations
from qtasks_django.models import TaskRecord
from qtasks_django.notifiers import ENQUEUED, get_notifier
from qtasks_django.status import TaskStatus
from tests.factories import TaskRecordFactory

pytestmark = pytest.mark.django_db


def failed_task(**fields) -> TaskRecord:
    return TaskRecordFactory(
        **{
            "task_name": "send_report",
            "queue": "reports",
            "priority": 3,
            "args": [42, "<b>x</b>"],
            "kwargs": {"lang": "fr"},
            "tags": ["mail"],
            "status": TaskStatus.ERROR,
            "traceback": "ValueError: boom",
            "retry": 0,
            "attempt": 2,
            "parent_uuid": uuid.uuid4(),
            "finished_at": timezone.now(),
            **fields,
        }
    )


class TestRetry:
    def test_a_failed_task_runs_again_as_a_linked_new_attempt(self) -> None:
        original = failed_task()

        outcome = operations.retry_task(original.pk)

        assert outcome.acted and outcome.message == "Retried as attempt 3."
        child = TaskRecord.objects.get(pk=outcome.task_uuid)
        original.refresh_from_db()
        assert original.retry_child_uuid == child.pk
        assert child.retry_parent_uuid == original.pk
        assert original.status == TaskStatus.ERROR, "the original keeps its outcome"
        assert child.status == TaskStatus.NEW and child.attempt == 3
        for field in operations.COPIED_FIELDS:
            assert getattr(child, field) == getattr(original, field), field
        assert child.eta <= timezone.now() and child.started_at is None and child.traceback == ""

    def test_a_cancelled_task_can_be_retried(self) -> None:
        cancelled = failed_task(status=TaskStatus.CANCEL, cancel_reason="by mistake", retry=3)

        outcome = operations.retry_task(str(cancelled.pk))

        assert outcome.acted
        assert TaskRecord.objects.get(pk=outcome.task_uuid).retry == 3

    def test_a_second_retry_of_the_same_task_does_nothing(self) -> None:
        original = failed_task()
        first = operations.retry_task(original.pk)

        second = operations.retry_task(original.pk)

        assert not second.acted
        assert second.message == "This task was already retried."
        assert second.task_uuid == first.task_uuid
        assert TaskRecord.objects.filter(retry_parent_uuid=original.pk).count() == 1

    @pytest.mark.parametrize(
        "status", [TaskStatus.NEW, TaskStatus.PROCESS, TaskStatus.SUCCESS, TaskStatus.RETRY]
    )
    def test_only_failed_or_cancelled_tasks_are_retried(self, status: str) -> None:
        task = TaskRecordFactory(status=status)

        outcome = operations.retry_task(task.pk)

        assert not outcome.acted
        assert outcome.message.startswith("Only a failed or cancelled task can be retried")
        assert TaskRecord.objects.count() == 1

    def test_an_unknown_task_is_refused(self) -> None:
        assert operations.retry_task(uuid.uuid4()).message == "There is no such task."
        assert operations.retry_task("not-a-uuid").message == "There is no such task."


@pytest.mark.django_db(transaction=True)
def test_two_retries_at_the_same_moment_make_one_new_attempt() -> None:
    original = failed_task()
    start = threading.Barrier(2)
    outcomes: list[operations.OperationResult] = []

    def retry() -> None:
        try:
            start.wait()
            outcomes.append(operations.retry_task(original.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(o.acted for o in outcomes) == [False, True]
    assert TaskRecord.objects.filter(retry_parent_uuid=original.pk).count() == 1


class TestRunNow:
    def test_a_delayed_task_becomes_due_now(self) -> None:
        delayed = TaskRecordFactory(eta=timezone.now() + timedelta(hours=1))

        outcome = operations.run_task_now(delayed.pk)

        delayed.refresh_from_db()
        assert outcome.acted and outcome.task_uuid == delayed.pk
        assert delayed.eta <= timezone.now()
        assert TaskRecord.objects.ready().filter(pk=delayed.pk).exists()

    def test_a_task_already_due_is_left_as_it_is(self) -> None:
        due = TaskRecordFactory()

        outcome = operations.run_task_now(due.pk)

        assert not outcome.acted and "already due" in outcome.message
        assert TaskRecord.objects.get(pk=due.pk).eta == due.eta

    def test_a_task_that_is_not_waiting_is_refused(self) -> None:
        done = TaskRecordFactory(succeeded=True, eta=timezone.now() + timedelta(hours=1))

        outcome = operations.run_task_now(done.pk)

        assert not outcome.acted and outcome.message.startswith("Only a waiting task")


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_run_now_wakes_the_workers_of_the_tasks_queue_after_commit() -> None:
    delayed = TaskRecordFactory(queue="reports", eta=timezone.now() + timedelta(hours=1))
    with get_notifier().listen([ENQUEUED]) as listener:
        operations.run_task_now(delayed.pk)
        received = []
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            received = listener.wait(0.5)

    assert (ENQUEUED, "reports") in received


class TestDuplicate:
    def test_a_fresh_copy_is_enqueued_not_linked(self) -> None:
        original = failed_task()

        outcome = operations.duplicate_task(original.pk)

        copy = TaskRecord.objects.get(pk=outcome.task_uuid)
        assert outcome.acted and copy.pk != original.pk
        assert copy.status == TaskStatus.NEW and copy.attempt == 1
        assert copy.retry_parent_uuid is None and copy.retry_child_uuid is None
        for field in ("task_name", "queue", "priority", "args", "kwargs", "tags"):
            assert getattr(copy, field) == getattr(original, field), field
        assert TaskRecord.objects.get(pk=original.pk).retry_child_uuid is None

    def test_the_same_request_twice_makes_one_copy(self) -> None:
        original = TaskRecordFactory(succeeded=True)
        nonce = uuid.uuid4()

        first = operations.duplicate_task(original.pk, new_uuid=nonce)
        second = operations.duplicate_task(original.pk, new_uuid=str(nonce))

        assert first.acted and not second.acted
        assert second.message == "This task was already duplicated."
        assert TaskRecord.objects.count() == 2

    def test_two_requests_make_two_copies(self) -> None:
        original = TaskRecordFactory(succeeded=True)

        operations.duplicate_task(original.pk, new_uuid=uuid.uuid4())
        operations.duplicate_task(original.pk, new_uuid=uuid.uuid4())

        assert TaskRecord.objects.filter(task_name=original.task_name, status=TaskStatus.NEW).count() == 2

    def test_a_malformed_copy_id_or_an_unknown_task_is_refused(self) -> None:
        original = TaskRecordFactory()
        assert not operations.duplicate_task(original.pk, new_uuid="nope").acted
        assert not operations.duplicate_task(uuid.uuid4()).acted
        assert TaskRecord.objects.count() == 1


class TestCancel:
    def test_a_waiting_task_is_cancelled_at_once_with_the_reason(self) -> None:
        waiting = TaskRecordFactory()

        outcome = operations.cancel_task(waiting.pk, "not needed")

        waiting.refresh_from_db()
        assert outcome.acted and outcome.message == "Cancelled; the task will not run."
        assert waiting.status == TaskStatus.CANCEL and waiting.cancel_reason == "not needed"

    def test_a_running_task_gets_a_cancel_request_for_its_worker(self) -> None:
        running = TaskRecordFactory(running=True)

        outcome = operations.cancel_task(running.pk, "stop it")

        running.refresh_from_db()
        assert outcome.acted and "worker" in outcome.message
        assert running.status == TaskStatus.PROCESS
        assert running.cancel_requested_at is not None and running.cancel_reason == "stop it"

    def test_an_ended_task_has_nothing_to_cancel(self) -> None:
        done = TaskRecordFactory(succeeded=True)

        outcome = operations.cancel_task(done.pk)

        assert not outcome.acted
        assert TaskRecord.objects.get(pk=done.pk).status == TaskStatus.SUCCESS
