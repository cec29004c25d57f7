"""Flow control on the admin's pages: why a task is not running, its flow columns, a task's declaration.

The reasons come from ``queue.explain`` (the same ones ``app.explain`` returns), read when
the page is drawn; each names the tasks involved (linked) and when it lapses by itself.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import TaskRecord
from ..queue.explain import Reason, explain
from ..tasks.flow import Rate
from .common import format_age, format_time, task_link
from .detail import ACTIVE_STATUSES

#: The task page's flow fields, each shown only when the task has that column set.
FLOW_FIELDS = {
    "unique_text": "unique_key",
    "concurrency_text": "concurrency_key",
    "rate_text": "rate_key",
}


def flow_fieldsets(record: TaskRecord | None) -> list[Any]:
    """The fieldsets a task's page adds: the reasons of a waiting or running task, its flow columns."""
    if record is None:
        return []
    fieldsets: list[Any] = []  # spread into the page's FieldsetSpec
    if record.status in ACTIVE_STATUSES:
        fieldsets.append(("Why is it not running?", {"fields": ("why_not_running",)}))
    shown = tuple(name for name, column in FLOW_FIELDS.items() if getattr(record, column) is not None)
    if shown:
        fieldsets.append(("Flow control", {"fields": shown}))
    return fieldsets


def render_reasons(record: TaskRecord) -> SafeString | str:
    explanation = explain(record.pk)
    if explanation is None:  # deleted since the page began
        return "-"
    return format_html(
        '<ul class="qtasks-reasons">{}</ul>',
        format_html_join(
            "",
            '<li class="qtasks-reason qtasks-reason-{}">{}{}{}</li>',
            ((reason.code, reason.message, _tasks(reason), _until(reason)) for reason in explanation.reasons),
        ),
    )


def _tasks(reason: Reason) -> SafeString | str:
    if not reason.tasks:
        return ""
    links = format_html_join(", ", "{}", ((task_link(uuid),) for uuid in reason.tasks))
    return format_html(' <span class="qtasks-reason-tasks">tasks: {}</span>', links)


def _until(reason: Reason) -> SafeString | str:
    if reason.until is None:
        return ""
    return format_html(
        ' <span class="qtasks-note qtasks-reason-until">until {} ({})</span>',
        format_time(reason.until),
        format_age(reason.until),
    )


def describe_unique(record: TaskRecord) -> str:
    """``flow_unique:42: held while it waits or runs, until 2026-11-22 12:00:00``."""
    held = "while it waits or runs" if record.unique_while_running else "while it waits"
    until = f", until {format_time(record.unique_until)} at the latest" if record.unique_until else ""
    return f"{record.unique_key}: held {held}{until}"


def describe_concurrency(record: TaskRecord) -> str:
    return f"{record.concurrency_key}: at most {record.concurrency_limit} running at a time"


def describe_rate(record: TaskRecord) -> str:
    if record.rate_limit is None or record.rate_period is None:
        return f"{record.rate_key}: -"
    return f"{record.rate_key}: {_rate_words(Rate(record.rate_limit, record.rate_period))}"


def _rate_words(rate: Rate) -> str:
    """``at most 5 starts in any 1 s``, ``at most 100 starts in any 5 min``."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if rate.period % size == 0:
            return f"at most {rate.count} starts in any {rate.period / size:g} {unit}"
    return f"at most {rate.count} starts in any {rate.period:g} s"


class TaskFlowFields:
    """The task page's flow fields; ``TaskRecordAdmin`` mixes them in."""

    @admin.display(description="reasons")
    def why_not_running(self, obj: TaskRecord) -> SafeString | str:
        return render_reasons(obj)

    @admin.display(description="unique key")
    def unique_text(self, obj: TaskRecord) -> str:
        return describe_unique(obj)

    @admin.display(description="concurrency key")
    def concurrency_text(self, obj: TaskRecord) -> str:
        return describe_concurrency(obj)

    @admin.display(description="rate key")
    def rate_text(self, obj: TaskRecord) -> str:
        return describe_rate(obj)


def describe_declaration(flow: dict[str, Any]) -> list[tuple[str, str]]:
    """A registered task's flow declaration (``RegisteredTask.flow``) as labelled sentences."""
    lines = []
    if flow.get("unique"):
        held = "while waiting" if flow.get("unique_while") == "waiting" else "while waiting or running"
        lines.append(("unique", f"one task per set of arguments, {held}"))
    if flow.get("unique_for") is not None:
        applies = "" if flow.get("unique") else " (for calls given a unique_key)"
        lines.append(("unique for", f"{flow['unique_for']:g} s at most{applies}"))
    if flow.get("concurrency_limit") is not None:
        key = flow.get("concurrency_key")
        per = f"per key {key}" if key else "for the whole task"
        lines.append(("concurrency", f"at most {flow['concurrency_limit']} running at a time, {per}"))
    if flow.get("rate_limit") is not None:
        key = flow.get("rate_key")
        per = f"per key {key}" if key else "for the whole task"
        try:
            words = _rate_words(Rate.parse(flow["rate_limit"]))
        except ValueError:  # written by another version: show it as stored
            words = str(flow["rate_limit"])
        lines.append(("rate", f"{words}, {per}"))
    return lines


def render_declaration(flow: Any) -> SafeString | str:
    lines = describe_declaration(flow) if isinstance(flow, dict) else []
    if not lines:
        return "none"
    return format_html(
        '<dl class="qtasks-params qtasks-flow">{}</dl>', format_html_join("", "<dt>{}</dt><dd>{}</dd>", lines)
    )
