"""The tasks admin in a real browser: log in, find a task by its status, read its record.

The rows are written with the factories (no worker runs): what is tested is what a user of
the admin sees and can do, rendered and scripted by Chromium.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from qtasks_django.models import TaskRecord
from qtasks_django.status import TaskStatus
from tests.browser.conftest import PageEvents
from tests.browser.helpers import assert_page_was_clean, assert_pretty_json, log_in, open_admin_page
from tests.factories import TaskRecordFactory

ARGS_PAYLOAD = "<script>alert('args ran as script')</script>"
KWARGS_PAYLOAD = "<img src=x onerror=\"alert('kwargs ran as script')\">"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "reports/tasks.py", line 12, in send_report\n'
    "    raise ValueError(note)\n"
    "ValueError: <b onmouseover=\"alert('traceback ran as script')\">bad</b>"
)


@pytest.fixture
def failed() -> TaskRecord:
    return TaskRecordFactory(
        task_name="send_report",
        status=TaskStatus.ERROR,
        args=[42, ARGS_PAYLOAD],
        kwargs={"note": KWARGS_PAYLOAD, "lang": "français"},
        traceback=TRACEBACK,
        attempt=1,
    )


@pytest.fixture
def succeeded() -> TaskRecord:
    return TaskRecordFactory(
        task_name="add", args=[2, 3], succeeded=True, returning={"total": 5, "parts": [2, 3]}
    )


def result_rows(page: Page) -> Locator:
    return page.locator("#result_list tbody tr")


def test_superuser_logs_in_finds_tasks_by_status_and_reads_the_result(
    page: Page, page_events: PageEvents, admin_user, failed: TaskRecord, succeeded: TaskRecord
) -> None:
    log_in(page, admin_user.username, "password")
    open_admin_page(page, "QTasks", "Tasks")

    expect(page.get_by_role("heading", name="Select task to view")).to_be_visible()
    rows = result_rows(page)
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="send_report").locator(".field-status_badge")).to_have_text("Error")
    expect(rows.filter(has_text="add").locator(".field-status_badge")).to_have_text("Success")
    # Read-only: nothing to add, no bulk action (delete) to run.
    expect(page.get_by_role("link", name=re.compile(r"^Add task"))).to_have_count(0)
    expect(page.locator("select[name=action]")).to_have_count(0)

    page.locator("#changelist-filter").get_by_role("link", name="Success", exact=True).click()
    expect(page).to_have_url(re.compile(r"[?&]status__exact=success"))
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".field-status_badge")).to_have_text("Success")

    rows.first.get_by_role("link", name="add", exact=True).click()
    expect(page.get_by_role("heading", name="View task")).to_be_visible()
    assert_pretty_json(page.locator(".field-pretty_returning pre"), {"total": 5, "parts": [2, 3]})
    expect(page.locator(".field-status_badge .readonly")).to_have_text("Success")
    expect(page.locator(".field-traceback_block .readonly")).to_have_text("-")
    assert_page_was_clean(page_events)


def test_task_detail_shows_arguments_and_traceback_as_text(
    page: Page, page_events: PageEvents, admin_user, failed: TaskRecord, succeeded: TaskRecord
) -> None:
    log_in(page, admin_user.username, "password")
    open_admin_page(page, "QTasks", "Tasks")
    result_rows(page).filter(has_text="send_report").get_by_role("link", name="send_report").click()

    expect(page.get_by_role("heading", name="View task")).to_be_visible()
    expect(page.locator(".field-uuid .readonly")).to_have_text(str(failed.uuid))
    expect(page.locator(".field-status_badge .readonly")).to_have_text("Error")
    # Pretty-printed JSON, the payloads shown as the text they are, not run.
    assert_pretty_json(page.locator(".field-pretty_args pre"), [42, ARGS_PAYLOAD])
    assert_pretty_json(page.locator(".field-pretty_kwargs pre"), {"note": KWARGS_PAYLOAD, "lang": "français"})
    assert_pretty_json(page.locator(".field-pretty_returning pre"), None)
    assert page.locator(".field-traceback_block pre").text_content() == TRACEBACK
    for field in ("pretty_args", "pretty_kwargs", "traceback_block"):
        expect(page.locator(f".field-{field} :is(script, img, b)")).to_have_count(0)
    # Read-only: no form to save, nothing to delete.
    expect(page.get_by_role("button", name=re.compile("^Save"))).to_have_count(0)
    expect(page.get_by_role("link", name="Delete", exact=True)).to_have_count(0)
    assert_page_was_clean(page_events)
