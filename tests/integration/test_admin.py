"""The tasks admin: the list (filters, search, counts) and the detail page, and who sees what."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from qtasks_django.admin.paginator import EstimatedCountPaginator
from qtasks_django.models import RegisteredTask, TaskRecord
from qtasks_django.status import TaskStatus
from tests.factories import (
    RegisteredTaskFactory,
    TaskLogFactory,
    TaskProgressFactory,
    TaskRecordFactory,
    WorkerRecordFactory,
)
from tests.integration.admin_helpers import staff_client

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:qtasks_django_taskrecord_changelist")
SCRIPT = "<script>alert(1)</script>"


def change_url(task: TaskRecord) -> str:
    return reverse("admin:qtasks_django_taskrecord_change", args=[task.pk])


def page_text(response) -> str:
    """The page's HTML without the line-break hints (``<wbr>``) the admin puts in names."""
    return response.content.decode().replace("<wbr>", "")


def listed(client, **params) -> list[TaskRecord]:
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.fixture
def failed() -> TaskRecord:
    return TaskRecordFactory(
        task_name="add",
        status=TaskStatus.ERROR,
        args=[1, SCRIPT],
        kwargs={"who": "Ada"},
        returning={"total": 3},
        traceback="Traceback ...\nValueError: <b>bad</b>",
        started_at=timezone.now() - timedelta(seconds=2),
        finished_at=timezone.now(),
        worker_id="w-1",
    )


class TestList:
    def test_shows_status_badge_name_queue_attempt_worker_times_and_duration(
        self, admin_client, failed
    ) -> None:
        body = page_text(admin_client.get(CHANGELIST))
        assert '<span class="qtasks-badge qtasks-status-error">Error</span>' in body
        for text in ("add", "default", "w-1", str(failed.pk)[:8]):
            assert text in body
        assert "2.00 s" in body or "1.99 s" in body  # the duration

    def test_filters_by_status_task_name_queue_tag_and_date(self, admin_client, failed) -> None:
        RegisteredTaskFactory(name="it_emails", queue="it_emails", tags=["mail"])
        mail = TaskRecordFactory(task_name="it_emails", queue="it_emails", tags=["mail"])
        old = TaskRecordFactory(task_name="other", created_at=timezone.now() - timedelta(days=40))

        assert listed(admin_client, status__exact="error") == [failed]
        assert listed(admin_client, task_name="it_emails") == [mail]
        assert listed(admin_client, queue="it_emails") == [mail]
        assert listed(admin_client, tag="mail") == [mail]
        assert listed(admin_client, tag="no-task-has-it") == []
        assert old not in listed(
            admin_client, created_at__gte=(timezone.now() - timedelta(days=7)).isoformat()
        )

    def test_filter_choices_come_from_registered_tasks_and_workers(self, admin_client) -> None:
        RegisteredTaskFactory(name="send_report", queue="reports", tags=["billing"])
        WorkerRecordFactory(queues=["emails", "*"])
        body = admin_client.get(CHANGELIST).content.decode()
        for choice in ("?task_name=send_report", "?queue=reports", "?queue=emails", "?tag=billing"):
            assert choice in body

    def test_search_by_uuid_by_task_name_and_by_arguments(self, admin_client, failed) -> None:
        other = TaskRecordFactory(task_name="other", args=["find-me-42"])
        assert listed(admin_client, q=str(failed.pk)) == [failed]
        assert listed(admin_client, q="oth") == [other]
        assert listed(admin_client, q="FIND-ME") == [other]
        assert listed(admin_client, q=str(uuid.uuid4())) == []

    def test_without_the_data_permission_arguments_are_not_searchable(self, failed) -> None:
        TaskRecordFactory(task_name="other", args=["find-me-42"])
        viewer = staff_client("view_taskrecord")
        assert listed(viewer, q="find-me") == []
        assert listed(viewer, q="oth")[0].task_name == "other"

    def test_the_date_hierarchy_never_scans_for_distinct_dates(self, admin_client) -> None:
        now = timezone.now()
        TaskRecordFactory(created_at=now - timedelta(days=400))
        TaskRecordFactory(created_at=now)
        with CaptureQueriesContext(connection) as queries:
            body = admin_client.get(CHANGELIST).content.decode()
        assert f"created_at__year={now.year - 1}" in body and f"created_at__year={now.year}" in body
        on_tasks = [q["sql"].upper() for q in queries.captured_queries if "TASKRECORD" in q["sql"].upper()]
        assert on_tasks and not any("DISTINCT" in sql for sql in on_tasks)

    def test_a_million_rows_are_not_counted_on_postgresql(self, admin_client, monkeypatch) -> None:
        if connection.vendor != "postgresql":
            pytest.skip("the planner's estimate is PostgreSQL's")
        TaskRecordFactory.create_batch(30)
        connection.cursor().execute("ANALYZE qtasks_django_taskrecord")
        monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 10)
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(CHANGELIST)
        assert response.context["cl"].paginator.is_estimate
        assert "about" in response.content.decode()
        assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)

    def test_a_small_result_is_counted_exactly(self, admin_client, failed) -> None:
        response = admin_client.get(CHANGELIST)
        assert response.context["cl"].result_count == 1
        assert not response.context["cl"].paginator.is_estimate


class TestDetail:
    def test_shows_pretty_escaped_arguments_result_and_traceback(self, admin_client, failed) -> None:
        body = admin_client.get(change_url(failed)).content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert SCRIPT not in body
        assert "&quot;total&quot;: 3" in body
        assert "ValueError: &lt;b&gt;bad&lt;/b&gt;" in body

    def test_shows_the_retry_chain_each_attempt_linked(self, admin_client) -> None:
        third = TaskRecordFactory(status=TaskStatus.SUCCESS, attempt=3)
        second = TaskRecordFactory(status=TaskStatus.RETRY, attempt=2, retry_child_uuid=third.pk)
        first = TaskRecordFactory(status=TaskStatus.RETRY, attempt=1, retry_child_uuid=second.pk)
        second.retry_parent_uuid, third.retry_parent_uuid = first.pk, second.pk
        TaskRecord.objects.bulk_update([second, third], ["retry_parent_uuid"])

        body = admin_client.get(change_url(second)).content.decode()

        assert f'<a href="{change_url(first)}">attempt 1</a>' in body
        assert "<strong>attempt 2 (this task)</strong>" in body
        assert f'<a href="{change_url(third)}">attempt 3</a>' in body

    def test_shows_the_parent_and_the_nested_tasks(self, admin_client) -> None:
        parent = TaskRecordFactory(task_name="subtask_parent", succeeded=True)
        child = TaskRecordFactory(task_name="add", parent_uuid=parent.pk)
        assert change_url(child) in admin_client.get(change_url(parent)).content.decode()
        assert change_url(parent) in admin_client.get(change_url(child)).content.decode()

    def test_shows_progress_items_with_the_bar_and_the_log_lines(self, admin_client) -> None:
        task = TaskRecordFactory(running=True)
        TaskProgressFactory(task=task, seq=1, value={"done": 1, "total": 4})
        TaskProgressFactory(task=task, seq=2, value={"done": 2, "total": 4, "note": SCRIPT})
        TaskLogFactory(task=task, level="WARNING", message=f"careful {SCRIPT}")

        body = admin_client.get(change_url(task)).content.decode()

        assert 'aria-valuenow="50"' in body and "width: 50%" in body
        assert 'data-active="1"' in body, "a running task's progress updates live"
        assert "&quot;done&quot;: 2" in body and SCRIPT not in body
        assert "careful &lt;script&gt;" in body

    def test_shows_the_worker_its_heartbeat_and_the_lease(self, admin_client) -> None:
        worker = WorkerRecordFactory(id="host-1-main")
        task = TaskRecordFactory(running=True, worker_id=worker.pk)
        body = admin_client.get(change_url(task)).content.decode()
        assert reverse("admin:qtasks_django_workerrecord_change", args=[worker.pk]) in body
        assert "qtasks-worker-alive" in body
        assert "expires in" in body

    def test_is_read_only(self, admin_client, failed) -> None:
        assert admin_client.get(reverse("admin:qtasks_django_taskrecord_add")).status_code == 403
        delete = admin_client.post(
            reverse("admin:qtasks_django_taskrecord_delete", args=[failed.pk]), {"post": "yes"}
        )
        assert delete.status_code == 403
        assert TaskRecord.objects.filter(pk=failed.pk).exists()


class TestWhoSeesWhat:
    def test_a_user_without_the_data_permission_sees_statuses_but_no_data(self, failed) -> None:
        TaskProgressFactory(task=failed, seq=1, value="secret progress")
        TaskLogFactory(task=failed, message="secret log line")
        viewer = staff_client("view_taskrecord")

        assert listed(viewer) == [failed]
        body = viewer.get(change_url(failed)).content.decode()

        assert "qtasks-status-error" in body
        for secret in (
            "Ada",
            "alert(1)",
            "&quot;total&quot;",
            "ValueError",
            "secret progress",
            "secret log line",
        ):
            assert secret not in body, secret
        assert (
            body.count(">hidden</span>") >= 7
        )  # args, kwargs, result, traceback, reason, log, progress item

    def test_a_user_with_the_data_permission_sees_it(self, failed) -> None:
        body = staff_client("view_taskrecord", "view_task_data").get(change_url(failed)).content.decode()
        assert "Ada" in body and "ValueError" in body

    def test_a_staff_user_without_the_view_permission_is_refused(self, failed) -> None:
        assert staff_client().get(change_url(failed)).status_code == 403

    def test_an_anonymous_user_is_sent_to_log_in(self, client, failed) -> None:
        response = client.get(change_url(failed))
        assert response.status_code == 302 and "/login/" in response["Location"]


class TestLiveProgress:
    def url(self, task: TaskRecord) -> str:
        return reverse("admin:qtasks_django_taskrecord_live", args=[task.pk])

    def test_returns_the_status_and_the_items_after_the_last_one_shown(self, admin_client) -> None:
        task = TaskRecordFactory(running=True)
        for seq in (1, 2, 3):
            TaskProgressFactory(task=task, seq=seq, value={"percent": seq * 10})

        state = admin_client.get(self.url(task), {"after": 1}).json()

        assert state["status"] == "process" and state["active"] and state["count"] == 3
        assert state["fraction"] == pytest.approx(0.3)
        assert state["items"] == [
            {"seq": 2, "value": '{"percent": 20}'},
            {"seq": 3, "value": '{"percent": 30}'},
        ]

    def test_leaves_values_out_for_a_user_without_the_data_permission(self) -> None:
        task = TaskRecordFactory(running=True)
        TaskProgressFactory(task=task, seq=1, value={"percent": 10, "secret": "x"})

        state = staff_client("view_taskrecord").get(self.url(task)).json()

        assert state["items"] == [{"seq": 1}] and state["fraction"] is None and state["count"] == 1

    def test_needs_the_view_permission(self) -> None:
        task = TaskRecordFactory()
        assert staff_client().get(self.url(task)).status_code == 403


def test_registered_tasks_and_workers_pages_list_their_rows(admin_client) -> None:
    WorkerRecordFactory(id="w-1", host="h", queues=["default"])
    RegisteredTask.objects.create(name="send_report", func="reports.tasks.send_report")
    workers = admin_client.get(reverse("admin:qtasks_django_workerrecord_changelist")).content.decode()
    registered = page_text(admin_client.get(reverse("admin:qtasks_django_registeredtask_changelist")))
    assert "w-1" in workers
    assert "reports.tasks.send_report" in registered
