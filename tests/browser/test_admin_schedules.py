"""Schedules in Chromium: made through the admin's form, listed with their next firing,
paused, resumed and run now, the new task one click away; the list fits 1440 pixels."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import Page, expect

from qtasks_django.models import Schedule, TaskRecord
from qtasks_django.status import TaskStatus
from tests.browser.conftest import PageEvents
from tests.browser.helpers import assert_page_was_clean, log_in, open_admin_page
from tests.browser.test_admin_layout import OVERFLOWS
from tests.factories import TaskRecordFactory


def a_long_row() -> None:
    """A schedule whose every column is long: the list must still fit 1440 pixels."""
    schedule = Schedule.objects.create(
        name="reports.monthly_report_to_every_customer_of_the_northern_region",
        task_name="scheduled_report",
        cron="*/15 8-18 * * 1-5",
        timezone="America/Argentina/Buenos_Aires",
        args=[30],
        queue="emails-high-priority-reports",
        next_fire_at=timezone.now() + timedelta(minutes=15),
        last_error="firing at 2026-05-01T03:00:00+00:00 made no task: missing a required argument: 'days'",
    )
    last = TaskRecordFactory(schedule=schedule, status=TaskStatus.ERROR, task_name="scheduled_report")
    Schedule.objects.filter(pk=schedule.pk).update(last_task_uuid=last.pk, last_fired_at=last.created_at)


def test_a_schedule_made_in_the_admin_is_listed_paused_resumed_and_run_now(
    page: Page, page_events: PageEvents, admin_user
) -> None:
    a_long_row()
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, admin_user.username, "password")
    open_admin_page(page, "QTasks", "Schedules")
    page.get_by_role("link", name="Add schedule").click()

    page.get_by_label("Name:").fill("weekly-report")
    page.get_by_label("Task:").select_option("scheduled_report")
    page.get_by_label("Cron:").fill("0 3 * * 1")
    page.get_by_label("Args:", exact=True).fill("[7]")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    row = page.locator("#result_list tbody tr").filter(has_text="weekly-report")
    expect(row.locator(".field-timing")).to_have_text("At 03:00 on Monday (UTC)")
    expect(row.locator(".field-state .qtasks-badge")).to_have_text("enabled")
    schedule = Schedule.objects.get(name="weekly-report")
    assert schedule.next_fire_at is not None and schedule.next_fire_at.weekday() == 0
    expect(row.locator(".field-next_firing")).to_have_text(f"{schedule.next_fire_at:%Y-%m-%d %H:%M:%S}")
    assert page.evaluate(OVERFLOWS) == []

    row.get_by_role("link", name="weekly-report").click()
    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".messagelist")).to_have_text("Paused 1 schedule.")
    expect(page.locator(".field-next_firing_at .readonly")).to_have_text("- (paused)")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".messagelist")).to_have_text("Resumed 1 schedule.")
    expect(page.locator(".field-upcoming tbody tr")).to_have_count(5)

    page.get_by_role("button", name="Run now").click()
    message = page.locator(".messagelist")
    expect(message).to_contain_text("Run now of weekly-report: task ")
    message.get_by_role("link").click()
    expect(page.get_by_role("heading", name="View task")).to_be_visible()
    expect(page.locator(".field-fired_by .readonly")).to_have_text("weekly-report (run now)")
    task = TaskRecord.objects.get(schedule=schedule)
    assert (task.task_name, task.args) == ("scheduled_report", [7])
    expect(page).to_have_url(re.compile(f"/taskrecord/{task.pk}/change/$"))
    assert_page_was_clean(page_events)
