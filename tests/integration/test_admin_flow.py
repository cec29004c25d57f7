"""Flow control in the admin: a task's page says why it is not running and shows its flow
columns, a registered task shows its declaration, and the queues page pauses and resumes
queues once, behind its permission. Runs on PostgreSQL and SQLite.
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from qtasks_django import app
from qtasks_django.admin.common import format_time
from qtasks_django.models import PausedQueue, RegisteredTask, TaskRecord, WorkerRecord
from qtasks_django.queue.claims import Claims
from qtasks_django.status import TaskStatus
from tests.factories import TaskRecordFactory
from tests.integration.admin_helpers import client_for, staff_client, staff_user
from tests.tasks_flow import flow_by_account, flow_limited, flow_plain, flow_rated, flow_unique

pytestmark = pytest.mark.django_db

QUEUES = reverse("admin:qtasks_django_taskrecord_queues")
PAUSE = reverse("admin:qtasks_django_taskrecord_queues_pause")
RESUME = reverse("admin:qtasks_django_taskrecord_queues_resume")
WHY = "Why is it not running?"


def task_page(client, task_uuid) -> str:
    response = client.get(reverse("admin:qtasks_django_taskrecord_change", args=[task_uuid]))
    assert response.status_code == 200
    return response.content.decode()


def task_url(task_uuid) -> str:
    return reverse("admin:qtasks_django_taskrecord_change", args=[str(task_uuid)])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def live_worker(queues: list[str], knows: tuple[str, ...] = ("flow_plain", "flow_limited", "flow_rated")):
    worker = WorkerRecord.objects.create(id="w-live", host="h", pid=1, queues=queues, concurrency=4)
    for name in knows:
        RegisteredTask.objects.get_or_create(name=name, defaults={"func": "x"})[0].workers.add(worker)
    return worker


class TestWhyNotRunning:
    def test_a_paused_queue_and_a_full_concurrency_gate_with_links_to_the_running_tasks(
        self, admin_client
    ) -> None:
        live_worker(["*"])
        for _ in range(3):
            flow_limited.add_task()
        running = Claims().claim_gated("w-live", None, 10).records
        waiting = TaskRecord.objects.get(task_name="flow_limited", status=TaskStatus.NEW)
        app.pause_queue("default", reason="deploy <v2>", by="alice")

        page = task_page(admin_client, waiting.pk)

        assert WHY in page
        assert "Its queue &#x27;default&#x27; was paused by alice" in page and "deploy &lt;v2&gt;" in page
        assert "The concurrency limit of 2 for key &#x27;flow_limited&#x27; is reached" in page
        for task in running:
            assert f'<a href="{task_url(task.pk)}">{str(task.pk)[:8]}</a>' in page
        assert "flow_limited: at most 2 running at a time" in page  # its flow column

    def test_a_rate_limit_and_an_eta_say_until_when(self, admin_client) -> None:
        live_worker(["*"])
        for _ in range(6):
            flow_rated.add_task()
        Claims().claim_gated("w-live", None, 10)
        rated = TaskRecord.objects.get(task_name="flow_rated", status=TaskStatus.NEW)
        later = flow_plain.add_task(countdown=600)

        rate = app.explain(rated.pk).reasons[0]
        page = task_page(admin_client, rated.pk)
        assert rate.code == "rate" and "The rate limit of 5 per 1 s" in page
        assert f"until {format_time(rate.until)}" in page
        assert "flow_rated: at most 5 starts in any 1 s" in page

        page = task_page(admin_client, later.uuid)
        eta = TaskRecord.objects.get(pk=later.uuid).eta
        assert "It is not due until" in page and f"until {format_time(eta)}" in page

    def test_no_worker_then_ready(self, admin_client) -> None:
        task = flow_plain.add_task()
        assert "No live worker serves queue &#x27;default&#x27;" in task_page(admin_client, task.uuid)

        live_worker(["default"])
        page = task_page(admin_client, task.uuid)
        assert "It is ready; 0 ready tasks of queue &#x27;default&#x27; come before it" in page
        assert "Flow control" not in page  # a task without flow columns shows none

    def test_a_running_task_says_where_and_an_ended_one_shows_no_block(self, admin_client) -> None:
        live_worker(["*"])
        task = flow_plain.add_task()
        Claims().claim("w-live", None, 1)
        assert "It is running on worker &#x27;w-live&#x27;" in task_page(admin_client, task.uuid)

        # A running row with no worker record and no lease time (explain.py used to fail on it).
        lost = TaskRecordFactory(status=TaskStatus.PROCESS, worker_id="w-gone")
        assert "which has no record: the worker may be gone" in task_page(admin_client, lost.pk)

        ended = TaskRecordFactory(succeeded=True)
        assert WHY not in task_page(admin_client, ended.pk)

    def test_unique_and_per_key_columns(self, admin_client) -> None:
        unique = flow_unique.add_task(7)
        by_account = flow_by_account.add_task(account_id=42)
        keyed = flow_plain.add_task(unique_key="invoice-1", unique_for=3600)

        assert "flow_unique:" in task_page(admin_client, unique.uuid)
        assert ": held while it waits or runs</div>" in task_page(admin_client, unique.uuid)
        assert "acct:42: at most 1 running at a time" in task_page(admin_client, by_account.uuid)
        until = TaskRecord.objects.get(pk=keyed.uuid).unique_until
        assert (
            f"flow_plain:invoice-1: held while it waits or runs, until {format_time(until)} at the latest"
            in task_page(admin_client, keyed.uuid)
        )


def test_a_registered_task_shows_its_flow_declaration(admin_client) -> None:
    admin_client.get(reverse("admin:qtasks_django_registeredtask_changelist"))  # stores the registrations

    def page(name: str) -> str:
        return admin_client.get(
            reverse("admin:qtasks_django_registeredtask_change", args=[name])
        ).content.decode()

    assert "at most 1 running at a time, per key acct:{account_id}" in page("flow_by_account")
    assert "at most 5 starts in any 1 s, for the whole task" in page("flow_rated")
    assert "one task per set of arguments, while waiting or running" in page("flow_unique")
    assert '<div class="readonly">none</div>' in page("flow_plain")


class TestQueuesPage:
    def test_lists_queues_with_tasks_workers_or_a_pause(self, admin_client) -> None:
        TaskRecordFactory.create_batch(2, queue="emails")
        TaskRecordFactory(queue="emails", running=True)
        live_worker(["reports"])
        app.pause_queue("idle", reason="quiet", by="bob")

        page = admin_client.get(QUEUES).content.decode()

        names = [part.split('"')[0] for part in page.split('data-queue="')[1:]]
        assert names == ["emails", "idle", "reports"]
        emails = page.split('data-queue="emails"')[1].split("</tr>")[0]
        assert "?due=now&amp;queue=emails" in emails and ">2</a>" in emails
        assert "?status__exact=process&amp;queue=emails" in emails and ">1</a>" in emails
        idle = page.split('data-queue="idle"')[1].split("</tr>")[0]
        assert "paused</span> since" in idle and "by bob" in idle and "quiet" in idle
        assert ">Resume</button>" in idle and ">Pause</button>" in emails

    def test_pause_records_the_user_and_a_double_submit_acts_once(self, admin_client, admin_user) -> None:
        first = admin_client.post(PAUSE, {"queue": "emails", "reason": "mail server down"}, follow=True)
        pause = PausedQueue.objects.get()
        second = admin_client.post(PAUSE, {"queue": "emails", "reason": "again"}, follow=True)

        assert (pause.queue, pause.paused_by, pause.reason) == (
            "emails",
            admin_user.username,
            "mail server down",
        )
        assert PausedQueue.objects.get().paused_at == pause.paused_at  # the first pause is kept
        assert messages_of(first) == [
            "Paused queue 'emails': no worker starts its tasks until it is resumed."
        ]
        assert messages_of(second) == ["Queue 'emails' was already paused."]
        assert first.redirect_chain == [(QUEUES, 302)]

        admin_client.post(RESUME, {"queue": "emails"}, follow=True)
        again = admin_client.post(RESUME, {"queue": "emails"}, follow=True)
        assert not PausedQueue.objects.exists()
        assert messages_of(again) == ["Queue 'emails' was not paused."]

    def test_a_bad_queue_name_is_refused_with_a_message(self, admin_client) -> None:
        response = admin_client.post(PAUSE, {"queue": ""}, follow=True)
        assert messages_of(response)[0].startswith("Nothing paused: queue must be a non-empty string")
        assert not PausedQueue.objects.exists()

    def test_without_the_permission_no_button_and_no_pause(self) -> None:
        TaskRecordFactory(queue="emails")
        app.pause_queue("reports", by="alice")
        viewer = staff_client("view_taskrecord")

        page = viewer.get(QUEUES).content.decode()
        assert 'data-queue="emails"' in page and "qtasks-action-" not in page
        assert viewer.post(PAUSE, {"queue": "emails"}).status_code == 403
        assert viewer.post(RESUME, {"queue": "reports"}).status_code == 403
        assert list(PausedQueue.objects.values_list("queue", flat=True)) == ["reports"]

        pauser = staff_client("view_taskrecord", "pause_queue")
        assert ">Pause</button>" in pauser.get(QUEUES).content.decode()
        assert pauser.post(PAUSE, {"queue": "emails"}).status_code == 302
        assert PausedQueue.objects.filter(queue="emails").exists()

    def test_post_only_csrf_checked_and_needs_the_view_permission(self) -> None:
        csrf_checked = client_for(staff_user("view_taskrecord", "pause_queue"), enforce_csrf_checks=True)
        assert csrf_checked.post(PAUSE, {"queue": "emails"}).status_code == 403
        assert csrf_checked.get(PAUSE, {"queue": "emails"}).status_code == 405
        assert not PausedQueue.objects.exists()
        assert staff_client("view_workerrecord").get(QUEUES).status_code == 403

    def test_the_dashboard_counts_paused_queues_and_the_index_links_the_page(self, admin_client) -> None:
        TaskRecordFactory(queue="emails", created_at=timezone.now())
        app.pause_queue("emails")

        board = admin_client.get(reverse("admin:qtasks_django_taskrecord_dashboard")).content.decode()
        tile = board.split('id="tile-paused"')[1].split("</a>")[0]
        assert f'href="{QUEUES}"' in tile and '<span class="qtasks-tile-value">1</span>' in tile
        assert "qtasks-queue-paused-badge" in board.split('id="qtasks-queues"')[1]
        assert f'<a href="{QUEUES}">Queues</a>' in admin_client.get(reverse("admin:index")).content.decode()
