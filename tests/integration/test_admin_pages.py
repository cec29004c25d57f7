"""The admin's overview pages: the dashboard, registered tasks with statistics, and workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from qtasks_django import app
from qtasks_django.admin.dashboard import collect_dashboard
from qtasks_django.admin.stats import task_stats, waiting_without_live_worker
from qtasks_django.models import RegisteredTask
from qtasks_django.status import TaskStatus
from tests.factories import RegisteredTaskFactory, TaskRecordFactory, WorkerRecordFactory
from tests.integration.admin_helpers import staff_client

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:qtasks_django_taskrecord_dashboard")
REGISTERED = reverse("admin:qtasks_django_registeredtask_changelist")
WORKERS = reverse("admin:qtasks_django_workerrecord_changelist")


def ended(task_name: str, status: str, seconds: float, *, ago: timedelta = timedelta(minutes=5), **fields):
    finished = timezone.now() - ago
    return TaskRecordFactory(
        task_name=task_name,
        status=status,
        started_at=finished - timedelta(seconds=seconds),
        finished_at=finished,
        **fields,
    )


def gone_worker(**fields):
    return WorkerRecordFactory(heartbeat_at=timezone.now() - timedelta(hours=1), **fields)


class TestDashboard:
    def test_counts_waiting_delayed_running_and_ended_tasks(self) -> None:
        now = timezone.now()
        TaskRecordFactory.create_batch(3, queue="emails", created_at=now - timedelta(minutes=10))
        TaskRecordFactory(eta=now + timedelta(hours=1))
        TaskRecordFactory(running=True)
        ended("add", TaskStatus.SUCCESS, 1)
        ended("add", TaskStatus.ERROR, 1)
        ended("add", TaskStatus.SUCCESS, 1, ago=timedelta(hours=3))

        board = collect_dashboard()

        assert (board.waiting, board.delayed, board.running) == (3, 1, 1)
        assert board.ended_last_hour == {"success": 1, "error": 1}
        assert board.ended_last_day == {"success": 2, "error": 1}
        assert board.chart.total == 2 and len(board.chart.bars) == 60
        assert [q["queue"] for q in board.queues] == ["default", "emails"]
        emails = board.queues[1]
        assert (emails["waiting"], emails["delayed"]) == (3, 0)
        assert board.oldest_waiting.queue == "emails"

    def test_the_page_shows_the_numbers_and_the_chart(self, admin_client) -> None:
        ended("add", TaskStatus.SUCCESS, 1)
        TaskRecordFactory(task_name="nobody_runs_<me>")

        body = admin_client.get(DASHBOARD).content.decode()

        assert "Throughput per minute" in body and "<svg" in body and "qtasks-bar-success" in body
        assert "Waiting tasks that no live worker can run" in body
        assert "nobody_runs_&lt;me&gt;" in body and "nobody_runs_<me>" not in body

    def test_needs_the_view_permission(self) -> None:
        assert staff_client().get(DASHBOARD).status_code == 403
        assert staff_client("view_taskrecord").get(DASHBOARD).status_code == 200

    def test_is_linked_from_the_tasks_list_and_the_app_page(self, admin_client) -> None:
        assert (
            DASHBOARD
            in admin_client.get(reverse("admin:qtasks_django_taskrecord_changelist")).content.decode()
        )
        assert (
            DASHBOARD in admin_client.get(reverse("admin:app_list", args=["qtasks_django"])).content.decode()
        )


class TestRegisteredTasks:
    def test_viewing_the_page_stores_what_this_process_registered(self, admin_client) -> None:
        admin_client.get(REGISTERED)

        assert set(RegisteredTask.objects.values_list("name", flat=True)) >= set(app.tasks)
        row = RegisteredTask.objects.get(name="it_emails")
        assert (row.queue, row.tags, row.func) == ("it_emails", ["mail"], "tests.tasks_integration.it_emails")

    def test_a_second_view_writes_nothing_when_nothing_changed(self, admin_client) -> None:
        admin_client.get(REGISTERED)
        stamp = RegisteredTask.objects.get(name="add").updated_at
        admin_client.get(REGISTERED)
        assert RegisteredTask.objects.get(name="add").updated_at == stamp

    def test_statistics_runs_success_rate_percentiles_and_last_error(self) -> None:
        for seconds in (1, 2, 3, 4):
            ended("add", TaskStatus.SUCCESS, seconds)
        ended(
            "add", TaskStatus.ERROR, 5, traceback="Traceback...\nValueError: older", ago=timedelta(minutes=9)
        )
        last = ended(
            "add", TaskStatus.RETRY, 6, traceback="Traceback...\nKeyError: 'newest'", ago=timedelta(minutes=1)
        )
        ended("add", TaskStatus.SUCCESS, 100, ago=timedelta(days=3))  # outside the window

        stats = task_stats(["add", "idle"], since=timezone.now() - timedelta(hours=24))["add"]

        # The retried attempt is an attempt, not a run: its run goes on in another row.
        assert (stats.runs, stats.succeeded, stats.failed, stats.attempts) == (5, 4, 1, 6)
        assert stats.success_rate == pytest.approx(4 / 5)
        assert stats.p50 == pytest.approx(3.5, abs=0.01)
        assert stats.p95 == pytest.approx(5.75, abs=0.01)
        assert stats.last_error_uuid == last.pk and stats.last_error == "KeyError: 'newest'"

    def test_the_page_shows_parameters_statistics_and_live_workers(self, admin_client) -> None:
        alive = WorkerRecordFactory(id="alive-1", queues=["*"])
        gone = gone_worker(id="gone-1")
        # A task this process does not know, so that viewing the page leaves its row as it is.
        RegisteredTaskFactory(name="send_report", retry=2, tags=["math"], workers=[alive, gone])
        ended("send_report", TaskStatus.SUCCESS, 1)
        ended("send_report", TaskStatus.ERROR, 1, traceback="ValueError: <i>bad</i>")

        body = admin_client.get(REGISTERED, {"q": "send_report"}).content.decode().replace("<wbr>", "")

        assert "<dt>retry</dt><dd>2</dd>" in body and "[&quot;math&quot;]" in body
        assert "50.0%" in body and "ValueError: &lt;i&gt;bad&lt;/i&gt;" in body
        assert "alive-1" in body and "gone-1" not in body

    def test_waiting_work_no_live_worker_can_run_is_flagged(self, admin_client) -> None:
        gone = gone_worker(id="gone-1")
        other_queue = WorkerRecordFactory(id="emails-only", queues=["emails"])
        RegisteredTaskFactory(name="add", queue="default", workers=[gone, other_queue])
        TaskRecordFactory.create_batch(2, task_name="add")
        TaskRecordFactory(task_name="never_registered")

        flagged = {(g["task_name"], g["waiting"]) for g in waiting_without_live_worker()}
        body = admin_client.get(REGISTERED).content.decode()

        assert flagged == {("add", 2), ("never_registered", 1)}
        assert "none: 2 waiting task(s) cannot run" in body
        assert "<code>never_registered</code>" in body

    def test_a_live_worker_serving_the_queue_clears_the_flag(self) -> None:
        RegisteredTaskFactory(name="add", workers=[WorkerRecordFactory(queues=["default"])])
        TaskRecordFactory(task_name="add")
        assert waiting_without_live_worker() == []

    def test_the_last_error_is_hidden_without_the_data_permission(self) -> None:
        RegisteredTaskFactory(name="add")
        ended("add", TaskStatus.ERROR, 1, traceback="ValueError: secret")
        body = staff_client("view_registeredtask").get(REGISTERED).content.decode()
        assert "secret" not in body


class TestWorkers:
    def test_alive_or_gone_with_heartbeat_age_and_running_tasks(self, admin_client) -> None:
        alive = WorkerRecordFactory(id="alive-1", host="web-1", queues=["default", "emails"], concurrency=8)
        gone_worker(id="gone-1")
        WorkerRecordFactory(id="stopped-1", stopped_at=timezone.now())
        TaskRecordFactory.create_batch(2, running=True, worker_id=alive.pk)

        rows = {w.pk: w for w in admin_client.get(WORKERS).context["cl"].result_list}
        body = admin_client.get(WORKERS).content.decode()

        assert rows["alive-1"].running == 2 and rows["gone-1"].running == 0
        assert "qtasks-worker-alive" in body and ">gone<" in body and ">stopped<" in body
        assert "status__exact=process&amp;worker_id=alive-1" in body
        assert [w.pk for w in admin_client.get(WORKERS, {"state": "alive"}).context["cl"].result_list] == [
            "alive-1"
        ]

    def test_the_detail_lists_the_running_tasks(self, admin_client) -> None:
        worker = WorkerRecordFactory(id="alive-1")
        task = TaskRecordFactory(running=True, worker_id=worker.pk, task_name="sleeper")
        url = reverse("admin:qtasks_django_workerrecord_change", args=[worker.pk])
        body = admin_client.get(url).content.decode()
        assert reverse("admin:qtasks_django_taskrecord_change", args=[task.pk]) in body
