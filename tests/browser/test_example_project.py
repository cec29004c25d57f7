"""The example project's pages in headless Chromium, with a real worker behind them.

Each flow a new user tries on the demo page: queue a task from a form and follow it on
its status page, enqueue inside a transaction that rolls back, wait for a result with
``timeout``, watch a generator's progress arrive, follow a nested task, see a failing task
retried, cancel a long task while it runs, and the flow-control demos: a unique task
queued twice is one task, a paused queue holds it, limited tasks wait and say why. The example project runs as users run it
(example_project/settings.py, ``runserver`` and ``qtasks_worker`` subprocesses; see
example_site.py), once on a temporary SQLite file and, when the suite runs on PostgreSQL,
once on a PostgreSQL database of its own with Redis as the notifier when Redis answers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PageEvents, recording_page
from tests.browser.example_site import (
    ExampleSite,
    drop_postgres_database,
    recreate_postgres_database,
    sibling_postgres_url,
)
from tests.browser.helpers import assert_page_was_clean
from tests.conftest import _redis_problem

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TASK_TIMEOUT_MS = 20_000
"""How long a page may take to show a task's outcome: the worker runs it in the meantime."""
STATUS_URL = re.compile(r"/tasks/[0-9a-f-]{36}/$")


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def example_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExampleSite]:
    """The example project with its worker, on SQLite or on PostgreSQL (+ Redis when it answers)."""
    log_dir = tmp_path_factory.mktemp(f"example-{request.param}")
    if request.param == "sqlite":
        site = ExampleSite(
            database_url=f"sqlite:///{log_dir / 'example.sqlite3'}", redis_url="", log_dir=log_dir
        )
    else:
        database_url = sibling_postgres_url(os.environ["DATABASE_URL"])
        recreate_postgres_database(database_url)
        redis_url = "" if _redis_problem() else os.environ["REDIS_URL"]
        site = ExampleSite(database_url=database_url, redis_url=redis_url, log_dir=log_dir)
    try:
        site.start()
        yield site
    finally:
        site.stop()
        if request.param == "postgres":
            drop_postgres_database(site.database_url)


@pytest.fixture
def page(browser: Browser, example_site: ExampleSite, page_events: PageEvents) -> Iterator[Page]:
    """A fresh page on the example site that records dialogs, script errors and failed requests."""
    with recording_page(browser, example_site.url, page_events) as page:
        yield page
    example_site.check_alive()


def queue_from_form(page: Page, demo: str, **fields: object) -> None:
    """On the demo page, fill in ``demo``'s form and submit it; land on the task's status page."""
    page.goto("/")
    form = page.locator(f"#demo-{demo}")
    for name, value in fields.items():
        form.locator(f"[name={name}]").fill(str(value))
    form.get_by_role("button").click()
    expect(page).to_have_url(STATUS_URL)


def expect_status(page: Page, label: str) -> None:
    expect(page.locator("#task-status")).to_have_text(label, timeout=TASK_TIMEOUT_MS)


def mark_page(page: Page) -> None:
    """Tag the loaded document, so that :func:`assert_not_reloaded` proves script updates."""
    page.evaluate("window.notReloaded = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.notReloaded === true"), "the page was reloaded, not updated by its script"


def test_a_form_enqueues_and_the_status_page_follows_the_task_to_its_result(
    page: Page, page_events: PageEvents
):
    queue_from_form(page, "add", a=20, b=22)
    mark_page(page)
    expect(page.locator(".messages")).to_contain_text("Queued add as task")
    expect(page.get_by_role("heading", name="add(20, 22)")).to_be_visible()
    expect_status(page, "Success")
    expect(page.locator("#task-result")).to_have_text("42")
    expect(page.locator("#live-note")).to_have_text("final")
    assert_not_reloaded(page)
    # The recent tasks on the demo page link to the same status page.
    status_url = page.url
    page.goto("/")
    page.locator("table.tasks").get_by_role("link", name="add").first.click()
    expect(page).to_have_url(status_url)
    assert_page_was_clean(page_events)


def test_a_task_enqueued_in_a_transaction_that_rolls_back_never_exists(
    page: Page, page_events: PageEvents, example_site: ExampleSite
):
    page.goto("/")
    form = page.locator("#demo-transaction")
    form.get_by_label("roll the transaction back").check()
    form.get_by_role("button").click()
    expect(page).to_have_url(STATUS_URL)
    expect(page.locator(".messages")).to_contain_text("The transaction rolled back")
    expect(page.get_by_role("heading", name=re.compile("^No task"))).to_be_visible()
    task_path = page.url.removeprefix(example_site.url)
    assert page_events.failed_responses == [f"404 {page.url}"]
    # It is not merely late: the recent tasks do not list it, and its JSON is a 404 too.
    page.goto("/")
    expect(page.locator(f'table.tasks a[href="{task_path}"]')).to_have_count(0)

    page_events.failed_responses.clear()
    form = page.locator("#demo-transaction")
    form.get_by_role("button").click()
    expect(page.locator(".messages")).to_contain_text("The transaction committed task")
    expect_status(page, "Success")
    expect(page.locator("#task-result")).to_have_text("42")
    assert_page_was_clean(page_events)


def test_waiting_with_a_timeout_shows_the_result_or_that_time_ran_out(page: Page, page_events: PageEvents):
    page.goto("/")
    form = page.locator("#demo-wait")
    form.locator("[name=name]").fill("Ada")
    form.locator("[name=timeout]").fill("15")
    form.get_by_role("button").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Got the result in"))).to_be_visible()
    expect(page.locator("#waited-result")).to_have_text("hello Ada")

    page.goto("/")
    form = page.locator("#demo-wait")
    form.locator("[name=timeout]").fill("0.2")  # slow_hello takes about a second
    form.get_by_role("button").click()
    expect(page.get_by_role("heading", name="No result within 0.2 s")).to_be_visible()
    assert_page_was_clean(page_events)


def test_the_status_page_shows_a_generators_progress_while_it_runs(page: Page, page_events: PageEvents):
    queue_from_form(page, "doubler", n=10)  # 10 steps of 0.3 s
    mark_page(page)
    items = page.locator("#progress-items li")
    # Seen while it runs: some progress items, not yet the result.
    expect(items.first).to_be_visible(timeout=TASK_TIMEOUT_MS)
    assert items.count() < 10, "the progress appeared only at the end"
    expect(page.locator("#task-result")).to_be_hidden()
    expect_status(page, "Success")
    expect(items).to_have_text([str(2 * i) for i in range(10, 0, -1)])
    expect(page.locator("#task-result")).to_contain_text("20")
    assert_not_reloaded(page)
    assert_page_was_clean(page_events)


def test_a_nested_task_is_listed_under_its_parent_and_links_back(page: Page, page_events: PageEvents):
    queue_from_form(page, "parent", n=21)
    expect_status(page, "Success")
    child = page.locator("#children-list li")
    expect(child).to_have_count(1)
    expect(child).to_contain_text("add")
    expect(child.locator(".badge")).to_have_text("Success", timeout=TASK_TIMEOUT_MS)
    parent_url = page.url
    child.get_by_role("link").click()
    expect(page.get_by_role("heading", name="add(21, 21)")).to_be_visible()
    expect_status(page, "Success")
    expect(page.locator("#task-result")).to_have_text("42")
    page.locator("#parent-link").click()
    expect(page).to_have_url(parent_url)
    assert_page_was_clean(page_events)


def test_a_failing_task_is_retried_and_every_attempt_is_shown(page: Page, page_events: PageEvents):
    queue_from_form(page, "flaky")
    mark_page(page)
    expect_status(page, "Success")
    expect(page.locator("#task-result")).to_have_text('"succeeded on attempt 3"')
    attempts = page.locator("#attempts-list li")
    expect(attempts).to_have_count(3)
    for number in (1, 2):
        expect(attempts.nth(number - 1)).to_contain_text(f"attempt {number}")
        expect(attempts.nth(number - 1).locator(".badge")).to_have_text("Retried")
        expect(attempts.nth(number - 1)).to_contain_text(
            f"ZeroDivisionError: attempt {number} fails on purpose"
        )
    expect(attempts.nth(2).locator(".badge")).to_have_text("Success")
    assert_not_reloaded(page)
    # A failed attempt's own page shows the same chain and the final outcome.
    attempts.nth(0).get_by_role("link").click()
    expect_status(page, "Success")
    expect(page.locator("#attempts-list li")).to_have_count(3)
    assert_page_was_clean(page_events)


def test_a_long_task_is_cancelled_from_its_status_page_while_it_runs(
    page: Page, page_events: PageEvents, example_site: ExampleSite
):
    queue_from_form(page, "long_job", steps=200, seconds_per_step=0.1)
    mark_page(page)
    expect_status(page, "In process")
    expect(page.locator("#progress-bar .bar-label")).to_have_text(re.compile(r"^[1-9]\d* / 200$"))
    page.locator("#cancel-form [name=reason]").fill("enough for today")
    page.get_by_role("button", name="Cancel task").click()
    expect(page.locator(".messages")).to_have_text("Cancel requested: the task stops at its next step.")
    expect_status(page, "Cancelled")
    expect(page.locator("#task-cancel-reason")).to_have_text("enough for today")
    expect(page.get_by_role("button", name="Cancel task")).to_be_hidden()
    task = example_site.get_json(page.url.removeprefix(example_site.url) + "json/")
    assert task["status"] == "cancel"
    assert task["progress_bar"]["done"] < 200, "the task ran to its end: the cancel did not stop it"
    assert_page_was_clean(page_events)


def test_a_task_that_fails_ends_error_and_links_to_the_admin_to_retry_it(page: Page, page_events: PageEvents):
    queue_from_form(page, "fails", reason="no <b>printer</b>")
    expect(page.get_by_role("heading", name='fails("no <b>printer</b>")')).to_be_visible()
    expect_status(page, "Error")
    expect(page.locator("#task-error")).to_contain_text("ValueError: no <b>printer</b>")
    task_uuid = page.url.rstrip("/").rsplit("/", 1)[-1]
    expect(page.locator("#admin-link")).to_have_attribute(
        "href", f"/admin/qtasks_django/taskrecord/{task_uuid}/change/"
    )
    assert_page_was_clean(page_events)


def test_a_delayed_task_waits_for_its_countdown(
    page: Page, page_events: PageEvents, example_site: ExampleSite
):
    queue_from_form(page, "add_later", a=4, b=5, countdown=60)
    expect(page.get_by_role("heading", name="add(4, 5)")).to_be_visible()
    expect(page.locator("#task-status")).to_have_text("New")
    expect(page.locator("#task-due")).to_contain_text(re.compile(r"due in (60|59|58|57|56|55) s"))
    # The worker leaves it alone: still new a few polls later, its wait counting down.
    page.wait_for_timeout(2_000)
    task = example_site.get_json(page.url.removeprefix(example_site.url) + "json/")
    assert (task["status"], task["started_at"]) == ("new", None)
    assert task["due_in"].endswith(" s") and int(task["due_in"].split()[0]) <= 58
    assert_page_was_clean(page_events)


def test_a_unique_task_queued_twice_is_one_task_and_a_paused_queue_holds_it(
    page: Page, page_events: PageEvents
):
    page.goto("/")
    pause = page.locator("#demo-pause")
    pause.locator("[name=reason]").fill("deploying the report code")
    pause.get_by_role("button", name="Pause reports").click()
    expect(page.locator("#pause-state")).to_contain_text("Paused")
    expect(page.locator("#pause-state")).to_contain_text("deploying the report code")

    queue_from_form(page, "rebuild_report", tenant_id=42)
    expect(page.locator(".messages")).to_contain_text("the second returned the same task, created=False")
    expect(page.locator("#task-status")).to_have_text("New")
    expect(page.locator("#task-why")).to_contain_text(
        "Its queue 'reports' was paused by the demo page", timeout=TASK_TIMEOUT_MS
    )
    status_url = page.url
    page.goto("/")
    expect(page.locator("table.tasks").get_by_role("link", name="rebuild_report")).to_have_count(1)

    page.locator("#demo-pause").get_by_role("button", name="Resume reports").click()
    expect(page.locator(".messages")).to_contain_text("Resumed queue 'reports'")
    expect(page.locator("#pause-state")).to_contain_text("Running")
    page.goto(status_url)
    expect_status(page, "Success")
    expect(page.locator("#task-result")).to_have_text('"report of tenant 42 rebuilt"')
    expect(page.locator("#task-why")).to_be_empty()
    assert_page_was_clean(page_events)


def test_limited_tasks_wait_their_turn_and_the_status_page_says_why(page: Page, page_events: PageEvents):
    queue_from_form(page, "sync_tenant", tenant_id=5, count=3, seconds=1)
    expect(page.locator(".messages")).to_contain_text("Queued 3 sync_tenant tasks for tenant 5")
    # The last of three one-second syncs waits for the others, whatever the worker's slots.
    expect(page.locator("#task-why")).to_contain_text(
        "The concurrency limit of 1 for key 'tenant:5' is reached", timeout=TASK_TIMEOUT_MS
    )
    sync_url = page.url

    queue_from_form(page, "call_partner", count=10)
    # Two start each second: the last of ten waits about four seconds.
    expect(page.locator("#task-why")).to_contain_text(
        "The rate limit of 2 per 1 s for key 'call_partner' is used up", timeout=TASK_TIMEOUT_MS
    )
    expect_status(page, "Success")
    expect(page.locator("#task-result")).to_contain_text("call 10 started at")

    page.goto(sync_url)
    expect_status(page, "Success")
    expect(page.locator("#task-result")).to_contain_text("tenant 5 synced from")
    assert_page_was_clean(page_events)
