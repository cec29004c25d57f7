"""Fixtures of the browser tier: the admin in a real headless Chromium, driven by Playwright.

Playwright (sync API) drives Debian's ``chromium`` (``/usr/bin/chromium``, or
``QTASKS_TEST_CHROMIUM``; scripts/lib.sh installs it). Playwright's own browser download is
never used. Without Playwright or Chromium the tests skip with the reason; under CI they fail.

One Chromium serves the whole tier (``browser``, package-scoped); each test gets a fresh
context (no cookies) and page on pytest-django's ``live_server``, which runs Django in a
thread on the test database, so the tests are transactional and the rows they create are
committed where the server sees them.

Playwright's sync API keeps an asyncio loop running in the test's thread for as long as it
is started, and Django refuses ORM calls from a thread with a running loop
(``SynchronousOnlyOperation``). The test's own ORM calls (factories, the flush after each
test) are plain sync code, so ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set while, and only while,
Playwright runs: from the first browser test to the end of the tier. The live server's
thread has no loop and needs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from tests.conftest import _missing_service

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page, Response
    from pytest_django.live_server_helper import LiveServer

CHROMIUM = os.environ.get("QTASKS_TEST_CHROMIUM") or "/usr/bin/chromium"
# Headless, no sandbox (CI runs as root), and no connection of Chromium's own: the
# machine's network is closed, and Chromium's background requests only fail slowly.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
"""Playwright's wait for an element or a navigation: a local page that takes longer is broken."""


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Chromium, started once for the tier (skipped without it; failed under CI)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        _missing_service(f"Playwright is not installed ({exc}); pip install -r requirements/test.txt")
    if not os.access(CHROMIUM, os.X_OK):
        _missing_service(
            f"Chromium not found at {CHROMIUM}: apt-get install chromium (scripts/test.sh does), "
            "or set QTASKS_TEST_CHROMIUM"
        )
    with _django_async_unsafe_allowed(), sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as exc:
            _missing_service(f"Chromium at {CHROMIUM} did not start: {exc}")
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def _django_async_unsafe_allowed() -> Iterator[None]:
    """Set ``DJANGO_ALLOW_ASYNC_UNSAFE`` inside the block; restore what was there after it."""
    name = "DJANGO_ALLOW_ASYNC_UNSAFE"
    before = os.environ.get(name)
    os.environ[name] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@dataclass
class PageEvents:
    """What a page did that a user would notice as broken, recorded while the test ran."""

    dialogs: list[str] = field(default_factory=list)
    """Messages of ``alert``/``confirm``/``prompt`` dialogs (each dismissed)."""
    errors: list[str] = field(default_factory=list)
    """Uncaught JavaScript exceptions."""
    failed_responses: list[str] = field(default_factory=list)
    """``STATUS URL`` of every response >= 400 (but the favicon, which the admin has none of)."""


@pytest.fixture
def page_events() -> PageEvents:
    return PageEvents()


@contextmanager
def recording_page(
    browser: Browser,
    base_url: str,
    page_events: PageEvents,
    *,
    ignore: Callable[[str], bool] = lambda url: False,
) -> Iterator[Page]:
    """A fresh page in a context of its own on ``base_url``, recording dialogs, script
    errors and responses >= 400 (but those whose URL ``ignore`` accepts) in ``page_events``."""
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()

    def on_dialog(dialog: Dialog) -> None:
        page_events.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_response(response: Response) -> None:
        if response.status >= 400 and not ignore(response.url):
            page_events.failed_responses.append(f"{response.status} {response.url}")

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: page_events.errors.append(str(error)))
    page.on("response", on_response)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer, page_events: PageEvents) -> Iterator[Page]:
    """A fresh page in a context of its own, its relative URLs on the live server."""
    # The admin has no favicon; the browser asks for one anyway.
    with recording_page(
        browser, live_server.url, page_events, ignore=lambda url: url.endswith("/favicon.ico")
    ) as page:
        yield page
