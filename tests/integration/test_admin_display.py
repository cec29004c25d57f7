"""How the admin shows things: one date format on every page, tracebacks with the user's
code first, and success rates counted per run, not per attempt (retries run for real)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from qtasks_django.admin.stats import task_stats
from qtasks_django.admin.tracebacks import PACKAGE_DIR, fold_internal_frames
from qtasks_django.models import TaskLog
from qtasks_django.status import TaskStatus
from tests.factories import RegisteredTaskFactory, TaskLogFactory, TaskRecordFactory, WorkerRecordFactory
from tests.integration.helpers import chain_of
from tests.tasks import succeeds_third

CHANGELIST = reverse("admin:qtasks_django_taskrecord_changelist")
DASHBOARD = reverse("admin:qtasks_django_taskrecord_dashboard")
WORKERS = reverse("admin:qtasks_django_workerrecord_changelist")
REGISTERED = reverse("admin:qtasks_django_registeredtask_changelist")

#: The admin's one way to show a time: ``2026-11-22 12:08:01``.
ADMIN_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
#: Other ways a time may slip onto a page: ISO 8601 with its ``T``, Django's ``Nov. 22, 2026, 12:08 p.m.``.
OTHER_TIMES = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d|\b[A-Z][a-z]{2}\.? \d{1,2}, \d{4}|\b[ap]\.m\.")


def shown_text(body: str) -> str:
    """The page's text as a user reads it: no tags, no attributes, no scripts."""
    body = re.sub(r"<(script|style|svg)\b.*?</\1>", "", body, flags=re.S)
    return re.sub(r"<[^>]+>", "", body)


def local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.django_db
class TestOneDateFormat:
    def test_every_page_shows_times_one_way(self, admin_client) -> None:
        now = timezone.now()
        worker = WorkerRecordFactory(id="w-1", started_at=now - timedelta(hours=2), stopped_at=now)
        running = TaskRecordFactory(running=True, worker_id=worker.pk, cancel_requested_at=now)
        ended = TaskRecordFactory(
            succeeded=True, eta=now - timedelta(minutes=3), created_at=now - timedelta(hours=1)
        )
        TaskLogFactory(task=ended)
        RegisteredTaskFactory(name="add")
        pages = {
            "list": CHANGELIST,
            "running task": reverse("admin:qtasks_django_taskrecord_change", args=[running.pk]),
            "ended task": reverse("admin:qtasks_django_taskrecord_change", args=[ended.pk]),
            "dashboard": DASHBOARD,
            "workers": WORKERS,
            "worker": reverse("admin:qtasks_django_workerrecord_change", args=[worker.pk]),
            "registered task": reverse("admin:qtasks_django_registeredtask_change", args=["add"]),
        }
        for name, url in pages.items():
            text = shown_text(admin_client.get(url).content.decode())
            assert not OTHER_TIMES.search(text), f"{name}: {OTHER_TIMES.search(text)[0]!r}"
            assert re.search(ADMIN_TIME, text), name

        worker_page = shown_text(admin_client.get(pages["worker"]).content.decode())
        assert local(worker.started_at) in worker_page and local(worker.stopped_at) in worker_page
        running_page = shown_text(admin_client.get(pages["running task"]).content.decode())
        assert local(running.cancel_requested_at) in running_page
        assert local(running.lease_expires_at) in running_page
        log_time = timezone.localtime(TaskLog.objects.get(task=ended).created_at)
        assert log_time.strftime("%Y-%m-%d %H:%M:%S.") in shown_text(
            admin_client.get(pages["ended task"]).content.decode()
        )


USER_FILE = "/srv/reports/tasks.py"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    f'  File "{PACKAGE_DIR}/tasks/execution.py", line 51, in run_to_outcome\n'
    "    returning = await executor.execute()\n"
    "                ^^^^^^^^^^^^^^^^^^^^^^^^\n"
    f'  File "{PACKAGE_DIR}/tasks/executors.py", line 55, in execute\n'
    "    self.result = await self.run_task()\n"
    f'  File "/usr/lib/python3.12/site-packages/qtasks_django/tasks/run.py", line 88, in run_sync\n'
    "    return func(*args, **kwargs)\n"
    f'  File "{USER_FILE}", line 12, in send_report\n'
    "    build(user)\n"
    f'  File "{USER_FILE}", line 30, in build\n'
    "    raise ValueError('<b>no user</b>')\n"
    "ValueError: <b>no user</b>"
)


class TestTraceback:
    def test_the_packages_frames_are_left_out_and_counted(self) -> None:
        folded = fold_internal_frames(TRACEBACK)

        assert folded.hidden_frames == 3
        assert folded.text.splitlines() == [
            "Traceback (most recent call last):",
            "  [3 qtasks_django frames left out]",
            f'  File "{USER_FILE}", line 12, in send_report',
            "    build(user)",
            f'  File "{USER_FILE}", line 30, in build',
            "    raise ValueError('<b>no user</b>')",
            "ValueError: <b>no user</b>",
        ]

    def test_a_checkout_named_after_the_package_is_still_the_users_code(self) -> None:
        text = 'Traceback (most recent call last):\n  File "/home/ada/qtasks_django/example_project/t.py", line 1\nE: x'
        assert fold_internal_frames(text).hidden_frames == 0

    @pytest.mark.django_db
    def test_the_detail_page_shows_the_users_frames_first_and_the_whole_on_demand(self, admin_client) -> None:
        task = TaskRecordFactory(status=TaskStatus.ERROR, traceback=TRACEBACK)
        body = admin_client.get(
            reverse("admin:qtasks_django_taskrecord_change", args=[task.pk])
        ).content.decode()

        field = body[body.index("field-traceback_block") :]
        first_block = field[: field.index("</pre>")]
        assert "execution.py" not in first_block and "3 qtasks_django frames left out" in first_block
        assert "ValueError: &lt;b&gt;no user&lt;/b&gt;" in first_block
        details = field[field.index("<details") : field.index("</details>")]
        assert "Full traceback" in details and "execution.py" in details and "send_report" in details


@pytest.mark.django_db(transaction=True)
class TestSuccessRate:
    def test_a_task_that_succeeds_on_its_third_attempt_is_one_successful_run(
        self, run_worker, admin_client
    ) -> None:
        first = succeeds_third.add_task()
        run_worker()
        assert [r.status for r in chain_of(first.uuid)] == ["retry", "retry", "success"]

        stats = task_stats(["succeeds_third"], since=timezone.now() - timedelta(hours=1))["succeeds_third"]

        assert (stats.runs, stats.succeeded, stats.failed, stats.success_rate) == (1, 1, 0, 1.0)
        assert (stats.attempts, stats.attempts_per_run) == (3, 3.0)
        body = admin_client.get(REGISTERED, {"q": "succeeds_third"}).content.decode()
        assert '<dd class="qtasks-stat-success">100.0%</dd>' in body
        assert (
            '<dt title="3 attempts ended in the window">attempts/run</dt><dd class="qtasks-stat-attempts/run">3.0</dd>'
            in body
        )

    def test_a_failed_run_retried_from_the_admin_counts_once_by_its_last_attempt(self) -> None:
        finished = timezone.now() - timedelta(minutes=1)
        first = TaskRecordFactory(task_name="add", status=TaskStatus.ERROR, finished_at=finished)
        second = TaskRecordFactory(
            task_name="add", succeeded=True, attempt=2, retry_parent_uuid=first.pk, finished_at=finished
        )
        first.retry_child_uuid = second.pk
        first.save()

        stats = task_stats(["add"], since=timezone.now() - timedelta(hours=1))["add"]

        assert (stats.runs, stats.succeeded, stats.failed, stats.attempts) == (1, 1, 0, 2)
        assert stats.last_error_uuid == first.pk  # the failed attempt is still the last error
