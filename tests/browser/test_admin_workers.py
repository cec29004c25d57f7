"""The workers and registered tasks pages of the admin, rendered in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from qtasks_django.models import RegisteredTask, WorkerRecord
from tests.browser.conftest import PageEvents
from tests.browser.helpers import assert_page_was_clean, log_in, open_admin_page
from tests.factories import RegisteredTaskFactory, WorkerRecordFactory


@pytest.fixture
def workers() -> list[WorkerRecord]:
    return [
        WorkerRecordFactory(id="web-1-4242-main", host="web-1", pid=4242, queues=["default", "emails"]),
        WorkerRecordFactory(id="web-2-77-main", host="web-2", pid=77, concurrency=8),
    ]


@pytest.fixture
def registered(workers: list[WorkerRecord]) -> list[RegisteredTask]:
    return [
        RegisteredTaskFactory(
            name="send_report", func="reports.tasks.send_report", queue="emails", workers=workers
        ),
        RegisteredTaskFactory(name="add", func="tests.tasks.add", workers=workers[:1]),
    ]


def test_workers_page_lists_each_worker(
    page: Page, page_events: PageEvents, admin_user, workers: list[WorkerRecord]
) -> None:
    log_in(page, admin_user.username, "password")
    open_admin_page(page, "QTasks", "Workers")

    expect(page.get_by_role("heading", name="Select worker to view")).to_be_visible()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    first = rows.filter(has_text="web-1-4242-main")
    expect(first.locator(".field-host")).to_have_text("web-1")
    expect(first.locator(".field-pid")).to_have_text("4242")
    expect(first.locator(".field-queues")).to_contain_text("emails")
    expect(rows.filter(has_text="web-2-77-main").locator(".field-concurrency")).to_have_text("8")
    assert_page_was_clean(page_events)


def test_registered_tasks_page_lists_each_task(
    page: Page, page_events: PageEvents, admin_user, registered: list[RegisteredTask]
) -> None:
    log_in(page, admin_user.username, "password")
    open_admin_page(page, "QTasks", "Registered tasks")

    expect(page.get_by_role("heading", name="Select registered task to view")).to_be_visible()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="send_report").locator(".field-func")).to_have_text(
        "reports.tasks.send_report"
    )
    expect(rows.filter(has_text="send_report").locator(".field-queue")).to_have_text("emails")
    expect(rows.filter(has_text="tests.tasks.add").locator(".field-name")).to_have_text("add")
    assert_page_was_clean(page_events)
