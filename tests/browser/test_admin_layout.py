"""The wide admin pages at 1440 x 900: nothing to scroll sideways, no word cut in two.

The registered tasks page once cut words every few letters (``def/aul/t``: ``word-break:
break-all`` in a narrow column) and pushed its statistics off the screen; the task list
needed scrolling sideways. The rows here are long on purpose: dotted task names, a long
worker id, every time column filled.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from qtasks_django.models import RegisteredTask
from qtasks_django.status import TaskStatus
from tests.browser.conftest import PageEvents
from tests.browser.helpers import assert_page_was_clean, log_in
from tests.factories import RegisteredTaskFactory, TaskRecordFactory, WorkerRecordFactory

LONG_NAME = "reports.tasks.send_monthly_report_to_customer"
WORKER = "build-server-01.example.internal-123456-main"

#: Whether the page or any box in it scrolls sideways: ``[what, scroll width, width]`` of each.
OVERFLOWS = """() => {
  const boxes = [["page", document.documentElement]];
  document.querySelectorAll("#content *").forEach((el) => {
    const style = getComputedStyle(el);
    if (["auto", "scroll"].includes(style.overflowX) && el.tagName !== "PRE") {
      boxes.push([el.id || el.className || el.tagName, el]);
    }
  });
  return boxes
    .filter(([, el]) => el.scrollWidth > (el === document.documentElement ? window.innerWidth : el.clientWidth))
    .map(([what, el]) => [what, el.scrollWidth, el === document.documentElement ? window.innerWidth : el.clientWidth]);
}"""

#: Words (runs of letters and digits) of the result table drawn on more than one line.
BROKEN_WORDS = """() => {
  const broken = [];
  const walker = document.createTreeWalker(document.querySelector("#result_list"), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const match of node.textContent.matchAll(/[A-Za-z0-9]+/g)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const tops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
      if (tops.size > 1) broken.push(match[0]);
    }
  }
  return broken;
}"""


@pytest.fixture
def long_rows() -> None:
    now = timezone.now()
    worker = WorkerRecordFactory(id=WORKER, host="build-server-01.example.internal")
    RegisteredTaskFactory(
        name=LONG_NAME,
        func=f"project.apps.{LONG_NAME}",
        queue="emails-high-priority",
        retry=3,
        tags=["reports", "customers", "monthly"],
        description="Build the monthly report of one customer and send it by mail.",
        workers=[worker],
    )
    for status in (TaskStatus.SUCCESS, TaskStatus.ERROR, TaskStatus.RETRY):
        TaskRecordFactory(
            task_name=LONG_NAME,
            queue="emails-high-priority",
            status=status,
            worker_id=WORKER,
            attempt=3,
            eta=now - timedelta(minutes=1),
            created_at=now - timedelta(minutes=5),
            started_at=now - timedelta(seconds=30),
            finished_at=now,
            traceback="Traceback (most recent call last):\nKeyError: 'customer_without_an_address'",
        )
    TaskRecordFactory(task_name=LONG_NAME, queue="emails-high-priority", eta=now + timedelta(minutes=5))


@pytest.mark.parametrize(
    "url",
    ["/admin/qtasks_django/taskrecord/", "/admin/qtasks_django/registeredtask/"],
    ids=["tasks", "registered tasks"],
)
def test_the_list_fits_1440_pixels_without_cutting_words(
    page: Page, page_events: PageEvents, admin_user, long_rows: None, url: str
) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, admin_user.username, "password")
    page.goto(url)
    expect(page.locator("#result_list tbody tr").first).to_be_visible()

    assert page.evaluate(OVERFLOWS) == []
    assert page.evaluate(BROKEN_WORDS) == []
    # Every column is on the screen, the last one too.
    last_header = page.locator("#result_list thead th").last.bounding_box()
    assert last_header is not None and last_header["x"] + last_header["width"] <= 1440
    assert RegisteredTask.objects.filter(name=LONG_NAME).exists()
    assert_page_was_clean(page_events)
