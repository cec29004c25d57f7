"""The admin operating a real worker, in Chromium: live progress, retry, cancel, run now.

Each test starts a ``qtasks_worker`` process on the live server's database (tests/browser/
worker.py), enqueues a task from tests/tasks_admin.py, and does what a user does in the
admin: watch it, retry it, cancel it.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from qtasks_django.models import TaskRecord
from qtasks_django.status import TaskStatus
from tests.browser.conftest import PageEvents
from tests.browser.helpers import assert_page_was_clean, log_in
from tests.browser.worker import admin_worker, wait_for_status
from tests.e2e.conftest import WorkerProcess
from tests.tasks_admin import admin_fails_once, admin_steps, admin_waits

__all__ = ["admin_worker"]  # the fixture, imported for the tests below

SLOW = 30_000  # ms: a worker on a busy 2-core machine may take a while to claim and run


def open_task(page: Page, task_uuid: object) -> None:
    page.goto(f"/admin/qtasks_django/taskrecord/{task_uuid}/change/")
    expect(page.get_by_role("heading", name="View task")).to_be_visible()


def badge(page: Page):
    return page.locator(".field-status_badge .readonly .qtasks-badge")


def test_progress_of_a_running_generator_updates_live(
    page: Page, page_events: PageEvents, admin_user, admin_worker: WorkerProcess
) -> None:
    task = admin_steps.add_task(8, 0.5)
    wait_for_status(task.uuid, TaskStatus.PROCESS)
    log_in(page, admin_user.username, "password")
    open_task(page, task.uuid)
    expect(badge(page)).to_have_text("In process", timeout=SLOW)

    # The page is not reloaded while the task runs: a marker set now survives the updates.
    page.evaluate("window.qtasksMarker = 'same page'")
    count = page.locator(".qtasks-progress-count")
    expect(count).to_have_text(re.compile(r"^[4-8]$"), timeout=SLOW)
    assert page.evaluate("window.qtasksMarker") == "same page"
    bar = page.locator(".qtasks-bar")
    assert 0 < int(bar.get_attribute("aria-valuenow") or 0) <= 100
    expect(page.locator(".qtasks-progress-items li").last).to_contain_text('"done": ')

    # When it ends, the page shows the outcome: status, full bar, result.
    expect(badge(page)).to_have_text("Success", timeout=SLOW)
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(page.locator(".qtasks-progress-items li")).to_have_count(8)
    expect(page.locator(".field-pretty_returning pre")).to_have_text('{\n  "steps": 8\n}')
    assert_page_was_clean(page_events)


def test_the_percent_done_text_follows_the_bar_even_on_a_page_opened_before_the_first_item(
    page: Page, page_events: PageEvents, admin_user, admin_worker: WorkerProcess
) -> None:
    log_in(page, admin_user.username, "password")
    task = admin_steps.add_task(3, 4)  # an item every 4 s: 33, 67, 100 % done
    wait_for_status(task.uuid, TaskStatus.PROCESS)
    response = page.goto(f"/admin/qtasks_django/taskrecord/{task.uuid}/change/")
    assert response is not None and "% done" not in response.text(), "opened after the first item"
    percent = page.locator(".qtasks-progress-summary .qtasks-progress-percent")
    expect(percent).to_have_count(0)

    # The live update makes the text when the first item arrives...
    expect(percent).to_have_text("33", timeout=SLOW)
    expect(page.locator(".qtasks-progress-summary")).to_have_text(
        re.compile(r"^1 item\(s\), 33% done \(updating live\)$")
    )
    # ...and a page that had it from the server keeps it current.
    page.reload()
    expect(percent).to_have_text("33")
    expect(percent).to_have_text("67", timeout=SLOW)
    expect(page.locator(".qtasks-bar")).to_have_attribute("aria-valuenow", "67")
    expect(badge(page)).to_have_text("Success", timeout=SLOW)
    expect(percent).to_have_text("100")
    assert_page_was_clean(page_events)


def test_retry_of_a_failed_task_runs_it_again_linked_to_the_first_attempt(
    page: Page, page_events: PageEvents, admin_user, admin_worker: WorkerProcess, tmp_path: Path
) -> None:
    task = admin_fails_once.add_task(str(tmp_path / "marker"), "<script>alert('note')</script>")
    wait_for_status(task.uuid, TaskStatus.ERROR)
    log_in(page, admin_user.username, "password")
    open_task(page, task.uuid)
    # The worker's traceback, the task's own frame first; the worker's frames on demand.
    traceback = page.locator(".field-traceback_block pre").first
    expect(traceback).to_contain_text("ValueError: first run fails: <script>")
    expect(traceback).to_contain_text("tests/tasks_admin.py")
    expect(traceback).not_to_contain_text("executors.py")
    expect(traceback).to_contain_text("qtasks_django frames left out")
    page.get_by_text("Full traceback").click()
    expect(page.locator(".qtasks-traceback-full pre")).to_contain_text("executors.py")

    page.get_by_role("button", name="Retry", exact=True).click()

    expect(page.locator(".messagelist")).to_have_text("Retried as attempt 2.")
    expect(page.locator(".fieldBox.field-attempt .readonly")).to_have_text("2")
    expect(badge(page)).to_have_text("Success", timeout=SLOW)  # the page follows the new attempt live
    chain = page.locator(".field-retry_chain .qtasks-chain li")
    expect(chain).to_have_count(2)
    expect(chain.first.get_by_role("link", name="attempt 1")).to_be_visible()
    first = TaskRecord.objects.get(pk=task.uuid)
    second = TaskRecord.objects.get(pk=first.retry_child_uuid)
    assert (first.status, second.status, second.returning["ran"]) == (
        TaskStatus.ERROR,
        TaskStatus.SUCCESS,
        "again",
    )
    assert second.retry_parent_uuid == first.pk
    # The first attempt offers no second retry.
    chain.first.get_by_role("link", name="attempt 1").click()
    expect(page.get_by_role("button", name="Retry", exact=True)).to_have_count(0)
    assert_page_was_clean(page_events)


def test_cancel_of_a_running_task_stops_it_in_its_worker(
    page: Page, page_events: PageEvents, admin_user, admin_worker: WorkerProcess
) -> None:
    task = admin_waits.add_task(60)
    wait_for_status(task.uuid, TaskStatus.PROCESS)
    log_in(page, admin_user.username, "password")
    open_task(page, task.uuid)

    page.get_by_role("button", name="Cancel…").click()
    expect(page.get_by_text("Are you sure you want to cancel the task")).to_be_visible()
    expect(page.get_by_text("It is running now")).to_be_visible()
    page.get_by_label("Reason").fill("customer <b>asked</b>")
    page.get_by_role("button", name="Yes, cancel the task").click()

    expect(page.locator(".messagelist")).to_have_text(
        "Cancel requested; the worker running the task stops it."
    )
    expect(badge(page)).to_have_text("Cancelled", timeout=SLOW)
    expect(page.locator(".field-cancel_reason_text .readonly")).to_have_text("customer <b>asked</b>")
    record = wait_for_status(task.uuid, TaskStatus.CANCEL)
    assert record.finished_at is not None and record.cancel_reason == "customer <b>asked</b>"
    assert admin_worker.alive(), "the worker goes on"
    assert_page_was_clean(page_events)


def test_a_delayed_task_is_run_now_or_cancelled_before_it_starts(
    page: Page, page_events: PageEvents, admin_user, admin_worker: WorkerProcess
) -> None:
    later = admin_waits.add_task(0, countdown=3600)
    never = admin_waits.add_task(0, countdown=3600)
    log_in(page, admin_user.username, "password")

    open_task(page, later.uuid)
    page.get_by_role("button", name="Run now").click()
    expect(page.locator(".messagelist")).to_have_text("The task is due now; a worker picks it up next.")
    expect(badge(page)).to_have_text("Success", timeout=SLOW)

    open_task(page, never.uuid)
    page.get_by_role("button", name="Cancel…").click()
    expect(page.get_by_text("It is waiting")).to_be_visible()
    page.get_by_role("button", name="Yes, cancel the task").click()
    expect(badge(page)).to_have_text("Cancelled")
    record = TaskRecord.objects.get(pk=never.uuid)
    assert (record.status, record.started_at, record.cancel_reason) == (
        TaskStatus.CANCEL,
        None,
        "cancelled in the admin",
    )
    assert_page_was_clean(page_events)
