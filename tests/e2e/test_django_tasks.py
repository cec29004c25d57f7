"""A real ``qtasks_worker`` process runs tasks written against Django's Tasks framework."""

from __future__ import annotations

import pytest

pytest.importorskip(
    "qtasks_django.backend.compat", reason="needs django.tasks (Django 6.0+) or the django-tasks backport"
)


from qtasks_django.backend.compat import TaskResultStatus
from qtasks_django.models import TaskRecord
from tests.tasks_django import dj_add, dj_async_double, dj_fails, dj_flaky, dj_too_slow

pytestmark = pytest.mark.django_db(transaction=True)

BURST_EXIT = 60  # generous: a burst run here takes a second or two


def test_a_worker_process_runs_django_tasks_sync_in_task_processes_and_async_on_its_loop(start_worker):
    sync = dj_add.enqueue(2, 3)
    on_loop = dj_async_double.enqueue(4)
    flaky = dj_flaky.enqueue(2)  # sync, with a context read in the task process, retried once
    fails = dj_fails.enqueue("for real")

    worker = start_worker("--burst", "--concurrency", "2")
    assert worker.wait_exit(BURST_EXIT) == 0, worker.describe()

    for result in (sync, on_loop, flaky, fails):
        result.refresh()
    assert sync.return_value == 5 and sync.worker_ids == [worker.id]
    assert on_loop.return_value == {"double": 8, "on_loop": True}
    assert flaky.return_value == {"attempt": 2, "errors": 1, "id": flaky.id}
    assert flaky.worker_ids == [worker.id, worker.id]
    assert fails.status == TaskResultStatus.FAILED
    assert fails.errors[0].exception_class_path == "builtins.ValueError"
    assert "for real" in fails.errors[0].traceback
    assert TaskRecord.objects.filter(status="new").count() == 0


def test_a_sync_django_task_past_max_time_is_killed_and_fails_with_the_limit_error(start_worker):
    result = dj_too_slow.enqueue(30)

    worker = start_worker("--burst")
    assert worker.wait_exit(BURST_EXIT) == 0, worker.describe()

    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    [error] = result.errors
    assert error.exception_class_path == "qtasks_django.exceptions.TaskTimeoutError"
    assert "0.5 seconds" in error.traceback
    assert (result.finished_at - result.started_at).total_seconds() < 10
