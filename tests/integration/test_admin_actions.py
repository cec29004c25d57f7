"""The admin's actions: POST only, CSRF-checked, each behind its own permission, acting once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from qtasks_django.models import TaskRecord
from qtasks_django.status import TaskStatus
from tests.factories import TaskRecordFactory
from tests.integration.admin_helpers import client_for, staff_client, staff_user

pytestmark = pytest.mark.django_db


def action_url(name: str, task: TaskRecord) -> str:
    return reverse(f"admin:qtasks_django_taskrecord_{name}", args=[task.pk])


def change_url(task_uuid) -> str:
    return reverse("admin:qtasks_django_taskrecord_change", args=[task_uuid])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def failed() -> TaskRecord:
    return TaskRecordFactory(status=TaskStatus.ERROR, traceback="ValueError: x", finished_at=timezone.now())


def test_retry_makes_a_linked_attempt_and_opens_it(admin_client, failed) -> None:
    response = admin_client.post(action_url("retry", failed))

    failed.refresh_from_db()
    assert failed.retry_child_uuid is not None
    assert response.status_code == 302 and response["Location"] == change_url(failed.retry_child_uuid)
    assert messages_of(response) == ["Retried as attempt 2."]


def test_a_double_submitted_retry_acts_once(admin_client, failed) -> None:
    admin_client.post(action_url("retry", failed))
    second = admin_client.post(action_url("retry", failed))

    assert TaskRecord.objects.filter(retry_parent_uuid=failed.pk).count() == 1
    assert messages_of(second)[-1] == "This task was already retried."


def test_a_double_submitted_duplicate_acts_once(admin_client, failed) -> None:
    page = admin_client.get(change_url(failed.pk)).content.decode()
    nonce = page.split('name="nonce" value="')[1].split('"')[0]

    admin_client.post(action_url("duplicate", failed), {"nonce": nonce})
    admin_client.post(action_url("duplicate", failed), {"nonce": nonce})

    copies = TaskRecord.objects.exclude(pk=failed.pk)
    assert [str(c.pk) for c in copies] == [nonce]
    assert copies[0].status == TaskStatus.NEW and copies[0].args == failed.args


def test_run_now_makes_a_delayed_task_due(admin_client) -> None:
    delayed = TaskRecordFactory(eta=timezone.now() + timedelta(days=1))

    response = admin_client.post(action_url("run_now", delayed))

    delayed.refresh_from_db()
    assert delayed.eta <= timezone.now()
    assert response["Location"] == change_url(delayed.pk)


def test_cancel_asks_for_confirmation_first(admin_client) -> None:
    waiting = TaskRecordFactory()

    page = admin_client.get(action_url("cancel", waiting))

    assert page.status_code == 200
    assert "Are you sure you want to cancel" in page.content.decode()
    assert TaskRecord.objects.get(pk=waiting.pk).status == TaskStatus.NEW


def test_confirmed_cancel_of_a_waiting_task_stores_the_reason(admin_client) -> None:
    waiting = TaskRecordFactory()

    response = admin_client.post(action_url("cancel", waiting), {"reason": "wrong <b>customer</b>"})

    waiting.refresh_from_db()
    assert waiting.status == TaskStatus.CANCEL and waiting.cancel_reason == "wrong <b>customer</b>"
    assert messages_of(response) == ["Cancelled; the task will not run."]


def test_confirmed_cancel_of_a_running_task_asks_its_worker_to_stop(admin_client) -> None:
    running = TaskRecordFactory(running=True)

    admin_client.post(action_url("cancel", running))

    running.refresh_from_db()
    assert running.status == TaskStatus.PROCESS and running.cancel_requested_at is not None
    assert running.cancel_reason == "cancelled in the admin"


@pytest.mark.parametrize("name", ["retry", "run_now", "duplicate"])
def test_actions_refuse_get(admin_client, failed, name: str) -> None:
    assert admin_client.get(action_url(name, failed)).status_code == 405


@pytest.mark.parametrize("name", ["retry", "cancel", "run_now", "duplicate"])
def test_actions_refuse_a_post_without_the_csrf_token(failed, name: str) -> None:
    client = client_for(
        staff_user("view_taskrecord", "retry_task", "cancel_task", "run_task_now", "duplicate_task"),
        enforce_csrf_checks=True,
    )
    before = TaskRecord.objects.count()

    assert client.post(action_url(name, failed)).status_code == 403
    assert (
        TaskRecord.objects.count() == before and TaskRecord.objects.get(pk=failed.pk).retry_child_uuid is None
    )


def test_an_action_with_the_csrf_token_from_the_page_works(failed) -> None:
    client = client_for(staff_user("view_taskrecord", "retry_task"), enforce_csrf_checks=True)
    client.get(change_url(failed.pk))  # sets the CSRF cookie

    response = client.post(
        action_url("retry", failed), {"csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    )

    assert response.status_code == 302
    assert TaskRecord.objects.get(pk=failed.pk).retry_child_uuid is not None


@pytest.mark.parametrize(
    ("name", "permission"),
    [
        ("retry", "retry_task"),
        ("cancel", "cancel_task"),
        ("run_now", "run_task_now"),
        ("duplicate", "duplicate_task"),
    ],
)
def test_each_action_needs_its_own_permission(name: str, permission: str) -> None:
    task = TaskRecordFactory(status=TaskStatus.ERROR)
    others = {"retry_task", "cancel_task", "run_task_now", "duplicate_task", "view_task_data"} - {permission}
    without = staff_client("view_taskrecord", *others)
    with_it = staff_client("view_taskrecord", permission)

    assert without.post(action_url(name, task)).status_code == 403
    assert with_it.post(action_url(name, task)).status_code in (200, 302)


def test_the_detail_page_offers_the_actions_that_apply_and_are_allowed(failed) -> None:
    delayed = TaskRecordFactory(eta=timezone.now() + timedelta(hours=1))
    everything = staff_client(
        "view_taskrecord", "retry_task", "cancel_task", "run_task_now", "duplicate_task"
    )
    retry_only = staff_client("view_taskrecord", "retry_task")

    def buttons(client, task) -> set[str]:
        body = client.get(change_url(task.pk)).content.decode()
        return {
            name for name in ("retry", "cancel", "run_now", "duplicate") if f"qtasks-action-{name}" in body
        }

    assert buttons(everything, failed) == {"retry", "duplicate"}
    assert buttons(everything, delayed) == {"cancel", "run_now", "duplicate"}
    assert buttons(retry_only, failed) == {"retry"}
    assert buttons(retry_only, delayed) == set()
    assert buttons(staff_client("view_taskrecord"), failed) == set()
