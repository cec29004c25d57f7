"""The dashboard's and the queues page's links on the admin index: rows in the QTasks block, above the tasks.

Django's admin index lists each app's models and nothing else, and a template of this
app cannot replace ``admin/index.html`` when ``django.contrib.admin`` comes first in
``INSTALLED_APPS`` (as it usually does). So the site that shows the tasks gets an index
template of ours, unless the project has chosen its own.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.urls import reverse

from .common import APP_LABEL

INDEX_TEMPLATE = "admin/qtasks_django/index.html"


def link_dashboard_from_index(site: AdminSite) -> None:
    """Render ``site``'s index with the dashboard row, unless the project set an index template."""
    if site.index_template is None:
        site.index_template = INDEX_TEMPLATE


def with_dashboard(app_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``app_list`` (the index's context) with "Dashboard" and "Queues" rows first in the QTasks block.

    The rows show where the tasks do, so only to a user who may view them (both pages'
    own permission). The lists given are left as they are.
    """
    result = []
    for app in app_list:
        if app.get("app_label") == APP_LABEL and _can_view_tasks(app):
            label = app["app_label"]
            rows = [
                _page_row("Dashboard", f"{label}_taskrecord_dashboard"),
                _page_row("Queues", f"{label}_taskrecord_queues"),
            ]
            app = {**app, "models": [*rows, *app["models"]]}
        result.append(app)
    return result


def _can_view_tasks(app: dict[str, Any]) -> bool:
    return any(
        model.get("object_name") == "TaskRecord" and model.get("perms", {}).get("view")
        for model in app["models"]
    )


def _page_row(name: str, url_name: str) -> dict[str, Any]:
    url = reverse(f"admin:{url_name}")
    return {
        "name": name,
        "object_name": name,
        "perms": {"view": True},
        "admin_url": url,
        "add_url": None,
        "view_only": True,
    }
