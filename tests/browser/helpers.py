"""Steps the browser tests share: logging in through the admin's form, and a clean page."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from playwright.sync_api import expect

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

    from tests.browser.conftest import PageEvents


def log_in(page: Page, username: str, password: str) -> None:
    """Open the admin, get sent to its login form, fill it in and land on the admin index."""
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def open_admin_page(page: Page, app: str, link: str) -> None:
    """From the admin index, follow ``link`` in the ``app`` section (as a user clicks it)."""
    section = page.locator(".module").filter(has=page.get_by_role("link", name=app, exact=True))
    section.get_by_role("link", name=link, exact=True).click()


def assert_page_was_clean(events: PageEvents) -> None:
    """No dialog opened, no JavaScript error, no failed request (a missing admin script, say)."""
    assert events.dialogs == [], "a dialog opened: a payload ran as script"
    assert events.errors == [], "JavaScript errors on the page"
    assert events.failed_responses == [], "requests that failed"


def assert_pretty_json(block: Locator, value: Any) -> None:
    """``block`` shows ``value`` as JSON indented by two (in the database's key order)."""
    text = block.text_content()
    assert text is not None
    assert json.loads(text) == value
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False), "not pretty-printed"
