"""Who sees and does what in the admin, in Chromium; and every value shown as text, never run."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from playwright.sync_api import Page, expect

from qtasks_django.models import TaskRecord
from qtasks_django.status import TaskStatus
from tests.browser.conftest import PageEvents
from tests.browser.helpers import assert_page_was_clean, log_in, open_admin_page
from tests.factories import RegisteredTaskFactory, TaskLogFactory, TaskProgressFactory, TaskRecordFactory

PAYLOAD = "<script>alert('{} ran as script')</script>"
IMG = "<img src=x onerror=\"alert('{} ran as script')\">"


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password="password", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="qtasks_django", codename__in=codenames)
    )
    return user


@pytest.fixture
def failed() -> TaskRecord:
    task = TaskRecordFactory(
        task_name="send_report",
        status=TaskStatus.ERROR,
        args=[7, PAYLOAD.format("args")],
        kwargs={"note": IMG.format("kwargs")},
        traceback=f"ValueError: {IMG.format('traceback')}",
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    TaskProgressFactory(task=task, seq=1, value={"done": 1, "total": 2, "note": PAYLOAD.format("progress")})
    TaskLogFactory(task=task, level="ERROR", message=IMG.format("log"))
    return task


def open_task(page: Page, task: TaskRecord) -> None:
    page.goto(f"/admin/qtasks_django/taskrecord/{task.pk}/change/")
    expect(page.get_by_role("heading", name="View task")).to_be_visible()


def test_a_viewer_without_the_data_permission_sees_statuses_and_hidden_data(
    page: Page, page_events: PageEvents, failed: TaskRecord
) -> None:
    staff("viewer", "view_taskrecord")
    log_in(page, "viewer", "password")
    open_admin_page(page, "QTasks", "Tasks")
    row = page.locator("#result_list tbody tr").filter(has_text="send_report")
    expect(row.locator(".field-status_badge")).to_have_text("Error")

    row.get_by_role("link", name="send_report").click()

    for field in (
        "pretty_args_hidden",
        "pretty_kwargs_hidden",
        "pretty_returning_hidden",
        "traceback_block_hidden",
        "log_hidden",
    ):
        expect(page.locator(f".field-{field} .readonly")).to_have_text("hidden")
    expect(page.locator(".qtasks-progress-items li")).to_have_text(["hidden"])
    expect(page.locator("#content-main")).not_to_contain_text("ran as script")
    expect(page.locator(".qtasks-actions")).to_have_count(0)
    assert_page_was_clean(page_events)


def test_a_forged_action_from_a_viewer_is_refused(page: Page, failed: TaskRecord) -> None:
    staff("viewer", "view_taskrecord", "view_task_data")
    log_in(page, "viewer", "password")
    open_task(page, failed)

    status = page.evaluate(
        """async (url) => {
            const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
            const body = new URLSearchParams({csrfmiddlewaretoken: token});
            return (await fetch(url, {method: "POST", body})).status;
        }""",
        f"/admin/qtasks_django/taskrecord/{failed.pk}/retry/",
    )

    assert status == 403
    assert TaskRecord.objects.get(pk=failed.pk).retry_child_uuid is None
    assert TaskRecord.objects.count() == 1


def test_a_user_sees_the_data_as_text_and_only_the_actions_allowed(
    page: Page, page_events: PageEvents, failed: TaskRecord
) -> None:
    staff("operator", "view_taskrecord", "view_task_data", "retry_task")
    log_in(page, "operator", "password")
    open_task(page, failed)

    expect(page.locator(".field-pretty_args pre")).to_contain_text(PAYLOAD.format("args"))
    expect(page.locator(".field-traceback_block pre")).to_have_text(f"ValueError: {IMG.format('traceback')}")
    expect(page.locator(".qtasks-progress-items li code")).to_contain_text(PAYLOAD.format("progress"))
    expect(page.locator(".field-log .qtasks-log pre")).to_have_text(IMG.format("log"))
    expect(page.locator("#content-main :is(script:not([src]), img[src=x])")).to_have_count(0)
    actions = page.locator(".qtasks-actions button")
    expect(actions).to_have_text(["Retry"])
    assert_page_was_clean(page_events)


def test_names_on_the_dashboard_and_registered_tasks_pages_are_text(
    page: Page, page_events: PageEvents, admin_user
) -> None:
    TaskRecordFactory(task_name=PAYLOAD.format("task name"), queue=IMG.format("queue"))
    RegisteredTaskFactory(
        name="send_report", description=IMG.format("description"), tags=[PAYLOAD.format("tag")]
    )
    log_in(page, admin_user.username, "password")

    page.goto("/admin/qtasks_django/taskrecord/dashboard/")
    expect(page.locator(".qtasks-warning")).to_contain_text(PAYLOAD.format("task name"))
    expect(page.locator("#qtasks-queues")).to_contain_text(IMG.format("queue"))
    open_admin_page(page, "QTasks", "Registered tasks")
    row = page.locator("#result_list tbody tr").filter(has_text="send_report")
    expect(row.locator(".qtasks-params")).to_contain_text(IMG.format("description"))
    expect(row.locator(".qtasks-params")).to_contain_text(PAYLOAD.format("tag"))
    expect(page.locator("#content :is(script:not([src]), img[src=x])")).to_have_count(0)
    assert_page_was_clean(page_events)
