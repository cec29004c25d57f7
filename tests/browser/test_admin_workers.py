"""The workers, registered tasks and dashboard pages of the admin, rendered in a real browser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from qtasks_django.models import RegisteredTask, WorkerRecord
from qtasks_django.status import TaskStatus
from tests.browser.conftest import PageEvents
from tests.browser.helpers import assert_page_was_clean, log_in, open_admin_page
from tests.factories import RegisteredTaskFactory, TaskRecordFactory, WorkerRecordFactory


@pytest.fixture
def workers() -> list[WorkerRecord]:
    return [
        WorkerRecordFactory(id="web-1-4242-main", host="web-1", pid=4242, queues=["default", "emails"]),
        WorkerRecordFactory(id="web-2-77-main", host="web-2", pid=77, concurrency=8),
        WorkerRecordFactory(
            id="web-3-9-main", host="web-3", heartbeat_at=timezone.now() - timedelta(hours=2)
        ),
    ]


@pytest.fixture
def registered(workers: list[WorkerRecord]) -> list[RegisteredTask]:
    finished = timezone.now() - timedelta(minutes=5)
    TaskRecordFactory(task_name="send_report", succeeded=True, finished_at=finished)
    TaskRecordFactory(
        task_name="send_report", status=TaskStatus.ERROR, traceback="KeyError: 'user'", finished_at=finished
    )
    return [
        RegisteredTaskFactory(
            name="send_report", func="reports.tasks.send_report", queue="emails", workers=workers
        ),
        RegisteredTaskFactory(name="add", func="tests.tasks.add", workers=workers[:1]),
    ]


def test_workers_page_lists_each_worker(
    page: Page, page_events: PageEvents, admin_user, workers: list[WorkerRecord]
) -> None:
    TaskRecordFactory.create_batch(2, running=True, worker_id="web-1-4242-main")
    log_in(page, admin_user.username, "password")
    open_admin_page(page, "QTasks", "Workers")

    expect(page.get_by_role("heading", name="Select worker to view")).to_be_visible()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    first = rows.filter(has_text="web-1-4242-main")
    expect(first.locator(".field-state")).to_have_text("alive")
    expect(first.locator(".field-host")).to_have_text("web-1")
    expect(first.locator(".field-pid")).to_have_text("4242")
    expect(first.locator(".field-queues")).to_contain_text("emails")
    expect(first.locator(".field-heartbeat_age")).to_contain_text("ago")
    expect(first.locator(".field-running_count")).to_have_text("2")
    expect(rows.filter(has_text="web-2-77-main").locator(".field-concurrency")).to_have_text("8")
    expect(rows.filter(has_text="web-3-9-main").locator(".field-state")).to_have_text("gone")

    first.locator(".field-running_count").get_by_role("link").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    assert_page_was_clean(page_events)


def test_registered_tasks_page_lists_each_task(
    page: Page, page_events: PageEvents, admin_user, registered: list[RegisteredTask]
) -> None:
    log_in(page, admin_user.username, "password")
    open_admin_page(page, "QTasks", "Registered tasks")

    expect(page.get_by_role("heading", name="Select registered task to view")).to_be_visible()
    rows = page.locator("#result_list tbody tr")
    report = rows.filter(has_text="reports.tasks.send_report")
    expect(report.locator(".field-task .qtasks-task-name")).to_have_text("send_report")
    expect(report.locator(".qtasks-params dt").filter(has_text="queue").locator("+ dd")).to_have_text(
        "emails"
    )
    expect(report.locator(".qtasks-stat-runs")).to_have_text("2")
    expect(report.locator(".qtasks-stat-success")).to_have_text("50.0%")
    expect(report.locator(".field-last_error")).to_contain_text("KeyError: 'user'")
    expect(report.locator(".field-can_run_it")).to_have_text("web-1-4242-main, web-2-77-main")
    # Viewing the page stored the tasks this web process knows, the test suite's own.
    expect(rows.filter(has_text="tests.tasks.add").locator(".qtasks-task-name")).to_have_text("add")
    assert_page_was_clean(page_events)


def test_dashboard_shows_counts_chart_queues_and_unknown_tasks(
    page: Page, page_events: PageEvents, admin_user, workers: list[WorkerRecord]
) -> None:
    TaskRecordFactory.create_batch(3, task_name="add", queue="emails")
    TaskRecordFactory(task_name="nobody_knows_me")
    TaskRecordFactory(succeeded=True)
    log_in(page, admin_user.username, "password")
    open_admin_page(page, "QTasks", "Tasks")

    page.get_by_role("link", name="Dashboard").click()

    expect(page.get_by_role("heading", name="Task dashboard")).to_be_visible()
    expect(page.locator("#tile-waiting .qtasks-tile-value")).to_have_text("4")
    expect(page.locator("#tile-succeeded .qtasks-tile-value")).to_have_text("1")
    expect(page.locator("#tile-workers .qtasks-tile-label")).to_contain_text("1 gone")
    expect(page.locator(".qtasks-chart svg rect.qtasks-bar-success")).to_have_count(1)
    expect(page.locator("#qtasks-queues tbody tr").filter(has_text="emails")).to_contain_text("3")
    expect(page.locator(".qtasks-warning")).to_contain_text("nobody_knows_me")
    expect(page.locator("#qtasks-oldest")).to_contain_text("waiting for")
    page.locator("#tile-waiting").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(4)
    assert_page_was_clean(page_events)
