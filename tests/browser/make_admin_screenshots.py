"""Take docs/img/admin-dashboard.png and docs/img/admin-task-detail.png from a real run.

Not a test (pytest does not collect it). Run it after changing the admin's pages:

    python -m tests.browser.make_admin_screenshots [--minutes 3]

It starts the example project on a temporary SQLite file with a worker (example_site.py),
creates a superuser, enqueues the demo tasks from the demo page in batches for a few
minutes (so the dashboard's chart has a history), then photographs the dashboard and the
detail page of a running ``long_job`` with its live progress bar and log.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.example_site import REPO_ROOT, ExampleSite

IMAGES = REPO_ROOT / "docs" / "img"
VIEWPORT = {"width": 1280, "height": 900}
#: Demo forms submitted in each batch (the demo page's ids); long_job is started last, once.
BATCH = ("add", "add", "add", "flaky", "parent", "doubler", "shout", "log_steps", "slow_hello")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long to feed tasks (default 3)")
    minutes = parser.parse_args().minutes
    os.environ["DJANGO_SUPERUSER_PASSWORD"] = "admin"  # read by createsuperuser --noinput
    with tempfile.TemporaryDirectory(prefix="qtasks-admin-screenshots-") as scratch:
        site = ExampleSite(
            database_url=f"sqlite:///{scratch}/db.sqlite3", redis_url="", log_dir=Path(scratch)
        )
        try:
            site.start()
            site.manage("createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com")
            take_screenshots(site.url, minutes)
        finally:
            site.stop()
    for name in ("admin-dashboard.png", "admin-task-detail.png"):
        print(f"wrote {(IMAGES / name).relative_to(REPO_ROOT)}")


def take_screenshots(base_url: str, minutes: float) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=base_url, viewport=VIEWPORT)
        feed_tasks(page, minutes)
        submit_demo(page, "long_job", steps="20", seconds_per_step="0.5")
        log_in(page)
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.goto("/admin/qtasks_django/taskrecord/dashboard/")
        expect(page.get_by_role("heading", name="Task dashboard")).to_be_visible()
        page.screenshot(path=IMAGES / "admin-dashboard.png", full_page=True)
        photograph_running_long_job(page)
        browser.close()


def feed_tasks(page: Page, minutes: float) -> None:
    """Submit a batch of demo tasks every 15 seconds for ``minutes``."""
    deadline = time.monotonic() + minutes * 60
    while True:
        for name in BATCH:
            submit_demo(page, name)
        if time.monotonic() > deadline:
            return
        time.sleep(15)


def submit_demo(page: Page, name: str, **fields: str) -> None:
    page.goto("/")
    form = page.locator(f"#demo-{name}")
    for field, value in fields.items():
        form.locator(f"[name={field}]").fill(value)
    form.get_by_role("button").click()
    page.wait_for_load_state()


def log_in(page: Page) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))


def photograph_running_long_job(page: Page) -> None:
    page.goto("/admin/qtasks_django/taskrecord/?task_name=long_job")
    page.locator("#result_list tbody tr").first.get_by_role("link", name="long_job").click()
    expect(page.locator(".qtasks-progress-count")).to_have_text(re.compile(r"^(8|9|10|11)$"), timeout=30_000)
    page.screenshot(path=IMAGES / "admin-task-detail.png", full_page=True)
    page.get_by_role("button", name="Cancel…").click()
    page.get_by_role("button", name="Yes, cancel the task").click()


if __name__ == "__main__":
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    main()
