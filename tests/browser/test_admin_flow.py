"""Paused queues in Chromium: a user pauses a queue from the admin, its waiting task's page
says why it does not run, and the queue is resumed."""

from __future__ import annotations

from django.urls import reverse
from playwright.sync_api import Page, expect

from qtasks_django.models import PausedQueue
from tests.browser.conftest import PageEvents
from tests.browser.helpers import assert_page_was_clean, log_in, open_admin_page
from tests.factories import TaskRecordFactory


def test_a_queue_paused_in_the_admin_holds_its_task_until_resumed(
    page: Page, page_events: PageEvents, admin_user
) -> None:
    task = TaskRecordFactory(task_name="add", queue="emails")
    log_in(page, admin_user.username, "password")
    open_admin_page(page, "QTasks", "Queues")

    row = page.locator("#qtasks-queue-list tbody tr").filter(has_text="emails")
    row.get_by_label("Reason for pausing emails").fill("mail server down")
    row.get_by_role("button", name="Pause").click()

    expect(page.locator(".messagelist")).to_have_text(
        "Paused queue 'emails': no worker starts its tasks until it is resumed."
    )
    expect(row.locator(".qtasks-queue-state")).to_contain_text(f"by {admin_user.username}")
    expect(row.locator(".qtasks-pause-reason")).to_have_text("mail server down")
    assert PausedQueue.objects.get().paused_by == admin_user.username

    row.get_by_role("link", name="1", exact=True).click()  # its waiting task, in the task list
    page.locator("#result_list").get_by_role("link", name="add").click()
    why = page.locator(".field-why_not_running .readonly")
    expect(why).to_contain_text(f"Its queue 'emails' was paused by {admin_user.username}")
    expect(why).to_contain_text("mail server down")

    page.goto(reverse("admin:qtasks_django_taskrecord_queues"))
    row.get_by_role("button", name="Resume").click()
    expect(page.locator(".messagelist")).to_have_text("Resumed queue 'emails'.")
    expect(row.locator(".qtasks-queue-state")).to_have_text("active")
    assert not PausedQueue.objects.exists()

    page.goto(reverse("admin:qtasks_django_taskrecord_change", args=[task.pk]))
    expect(why).not_to_contain_text("paused")
    assert_page_was_clean(page_events)
