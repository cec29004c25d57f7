"""The backend's pure parts: what ``validate_task`` refuses, priorities, and results built from rows."""

from __future__ import annotations

import traceback
from datetime import datetime, timedelta

import pytest

pytest.importorskip(
    "qtasks_django.backend.compat", reason="needs django.tasks (Django 6.0+) or the django-tasks backport"
)

from django.utils import timezone

from qtasks_django.backend import QTasksBackend, QTasksTask
from qtasks_django.backend.compat import InvalidTask, TaskResultStatus, task, task_backends
from qtasks_django.backend.results import chain_result, exception_class_path
from qtasks_django.exceptions import TaskTimeoutError
from qtasks_django.models import TaskRecord
from qtasks_django.tasks.app import default_app
from tests.tasks_django import dj_add, dj_context, dj_email, dj_flaky, dj_urgent


def test_the_backend_supports_all_of_django_s_features() -> None:
    backend = type(task_backends["default"])
    assert backend is QTasksBackend
    assert backend.supports_defer and backend.supports_async_task
    assert backend.supports_get_result and backend.supports_priority
    assert backend.task_class is QTasksTask


def _local_function() -> None:
    def inner():
        return None

    return inner


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: task(_local_function()), "module level"),
        (lambda: task(takes_context=True)(_module_level_without_context), "first argument of 'context'"),
        (lambda: dj_add.using(priority=101), "priority must be a whole number"),
        (lambda: dj_add.using(priority=-101), "priority must be a whole number"),
        (lambda: dj_add.using(queue_name="not_configured"), "Queue 'not_configured' is not valid"),
        (lambda: dj_add.using(run_after=datetime(2030, 1, 1)), "aware datetime"),
        (lambda: QTasksTask(func=_module_level_without_context, retry=-1), "retry must be an int"),
        (lambda: QTasksTask(func=_module_level_without_context, max_time=0), "max_time must be"),
        # Flow control is refused as on ``@shared_task``, when the task is declared.
        (lambda: QTasksTask(func=_module_level_without_context, unique="yes"), "unique must be a bool"),
        (
            lambda: QTasksTask(func=_module_level_without_context, rate_limit="10/ms"),
            "rate_limit must look like",
        ),
        (
            lambda: QTasksTask(func=_module_level_without_context, concurrency_key="k"),
            "concurrency_key needs a concurrency_limit",
        ),
        (
            # The context is the runtime's to give: a key cannot be made from it.
            lambda: QTasksTask(
                func=_module_level_with_context,
                takes_context=True,
                concurrency_limit=1,
                concurrency_key="{context}",
            ),
            r"names the argument 'context', which the task does not take \(its parameters: account_id\)",
        ),
    ],
)
def test_validate_task_refuses_what_django_and_qtasks_refuse(build, message) -> None:
    with pytest.raises(InvalidTask, match=message):
        build()


def _module_level_without_context(x):
    return x


def _module_level_with_context(context, account_id):
    return account_id


def test_flow_control_of_django_tasks_is_registered_with_their_declaration() -> None:
    assert default_app.tasks["tests.tasks_django.dj_unique"].flow.describe() == {
        "unique": True,
        "unique_while": "active",
    }
    assert default_app.tasks["tests.tasks_django.dj_by_account"].flow.describe() == {
        "concurrency_limit": 1,
        "concurrency_key": "acct:{account_id}",
        "rate_limit": "100/m",
        "rate_key": "<lambda>",
    }


def test_django_tasks_are_registered_under_their_dotted_path_with_our_priority() -> None:
    schema = default_app.tasks["tests.tasks_django.dj_urgent"]
    assert schema.func is dj_urgent.func and schema.priority == -90
    assert default_app.tasks["tests.tasks_django.dj_email"].queue == dj_email.queue_name == "django_emails"
    flaky = default_app.tasks["tests.tasks_django.dj_flaky"]
    assert (flaky.retry, flaky.retry_on_exc, flaky.tags, flaky.takes_context) == (
        2,
        [ValueError],
        ["django"],
        True,
    )
    # ``using`` makes another Task of the same function: the same registration serves it.
    assert dj_add.using(priority=5).module_path in default_app.tasks


def _traceback_of(exc: BaseException) -> str:
    try:
        raise exc
    except BaseException as raised:
        return "".join(traceback.format_exception(raised))


def test_the_exception_class_path_is_read_from_the_stored_traceback() -> None:
    assert exception_class_path(_traceback_of(ValueError("a: b\nsecond line"))) == "builtins.ValueError"
    assert (
        exception_class_path(_traceback_of(TaskTimeoutError("x")))
        == "qtasks_django.exceptions.TaskTimeoutError"
    )
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as outer:
        chained = "".join(traceback.format_exception(outer))
    assert exception_class_path(chained) == "builtins.RuntimeError"
    # The worker's own errors (a time limit) are formatted without frames.
    no_frames = "".join(traceback.format_exception(TimeoutError("limit")))
    assert exception_class_path(no_frames) == "builtins.TimeoutError"
    assert exception_class_path("") == "builtins.Exception"


def _row(status: str, **fields) -> TaskRecord:
    now = timezone.now()
    return TaskRecord(task_name="tests.tasks_django.dj_context", status=status, created_at=now, **fields)


@pytest.mark.parametrize(
    ("status", "django_status", "finished"),
    [
        ("new", TaskResultStatus.READY, False),
        ("process", TaskResultStatus.RUNNING, False),
        ("success", TaskResultStatus.SUCCESSFUL, True),
        ("error", TaskResultStatus.FAILED, True),
        ("cancel", TaskResultStatus.FAILED, True),
    ],
)
def test_each_status_of_the_current_attempt_is_django_s(status, django_status, finished) -> None:
    started = timezone.now()
    row = _row(status, started_at=started, finished_at=started + timedelta(seconds=1), worker_id="w1")
    result = chain_result(dj_context, [row], "default")
    assert result.status == django_status
    assert (result.finished_at is not None) == finished
    assert result.worker_ids == ["w1"] and result.attempts == 1


def test_a_chain_is_one_result_with_an_error_per_failed_attempt() -> None:
    t0 = timezone.now()
    first = _row(
        "retry", started_at=t0, finished_at=t0, worker_id="w1", traceback=_traceback_of(OSError("1"))
    )
    second = _row(
        "retry", started_at=t0 + timedelta(1), worker_id="w2", traceback=_traceback_of(OSError("2"))
    )
    third = _row("new", args=[9])
    result = chain_result(dj_flaky, [first, second, third], "default")
    assert result.id == str(first.uuid)
    assert result.status == TaskResultStatus.READY and result.finished_at is None
    assert [e.exception_class_path for e in result.errors] == ["builtins.OSError"] * 2
    assert result.worker_ids == ["w1", "w2"] and result.attempts == 2
    assert result.started_at == t0 and result.last_attempted_at == t0 + timedelta(1)
