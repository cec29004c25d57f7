"""Take docs/img/example-status.png: the example project's status page of a running long task.

Not a test (pytest does not collect it). Run it after changing the demo's pages:

    python -m tests.browser.make_example_screenshot

It starts the example project on a temporary SQLite file with a worker (example_site.py),
queues ``long_job`` from the demo page, waits until its progress bar is about half full,
saves the screenshot, then cancels the task and stops everything.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.example_site import REPO_ROOT, ExampleSite

SCREENSHOT = REPO_ROOT / "docs" / "img" / "example-status.png"
VIEWPORT = {"width": 1000, "height": 540}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="qtasks-screenshot-") as scratch:
        site = ExampleSite(
            database_url=f"sqlite:///{scratch}/db.sqlite3", redis_url="", log_dir=Path(scratch)
        )
        try:
            site.start()
            take_screenshot(site.url)
        finally:
            site.stop()
    print(f"wrote {SCREENSHOT.relative_to(REPO_ROOT)}")


def take_screenshot(base_url: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=base_url, viewport=VIEWPORT)
        page.goto("/")
        form = page.locator("#demo-long_job")
        form.locator("[name=steps]").fill("20")
        form.locator("[name=seconds_per_step]").fill("0.4")
        form.get_by_role("button").click()
        expect(page.locator("#progress-bar .bar-label")).to_have_text(
            re.compile(r"^(9|10) / 20$"), timeout=30_000
        )
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOT)
        page.get_by_role("button", name="Cancel task").click()
        browser.close()


if __name__ == "__main__":
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    main()
