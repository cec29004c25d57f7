"""The cells of the registered tasks list: the task, its parameters, its statistics, who runs it.

The page is a wide table beside the admin's navigation and filters; to fit a 1440 px
window, the name and the function share a cell, and the statistics are one small
definition list rather than five columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import RegisteredTask
from ..status import TaskStatus
from .common import APP_LABEL, breakable, compact_json, task_link, tasks_list_link

if TYPE_CHECKING:
    from .registered import ShownTask

PARAMETERS = (
    ("priority", "priority"),
    ("queue", "queue"),
    ("retry", "retry"),
    ("retry_on_exc", "retry_on_exc"),
    ("max_time", "max_time"),
    ("tags", "tags"),
    ("executor", "executor"),
    ("middlewares_before", "middlewares before"),
    ("middlewares_after", "middlewares after"),
    ("generate_handler", "generate_handler"),
    ("generating", "generator"),
    ("echo", "echo"),
    ("awaiting", "awaiting"),
    ("decode", "decode"),
    ("description", "description"),
)


class RegisteredColumns:
    """The list's display methods; ``RegisteredTaskAdmin`` mixes them in."""

    @admin.display(description="task", ordering="name")
    def task(self, obj: RegisteredTask) -> SafeString:
        url = reverse(f"admin:{APP_LABEL}_registeredtask_change", args=[obj.pk])
        return format_html(
            '<a href="{}" class="qtasks-task-name">{}</a><span class="qtasks-func qtasks-note">{}</span>',
            url,
            breakable(obj.name),
            breakable(obj.func),
        )

    @admin.display(description="parameters")
    def parameters(self, obj: RegisteredTask) -> SafeString:
        entries = ((label, _parameter_text(getattr(obj, field))) for field, label in PARAMETERS)
        shown = [(label, breakable(text)) for label, text in entries if text]
        return format_html(
            '<dl class="qtasks-params">{}</dl>', format_html_join("", "<dt>{}</dt><dd>{}</dd>", shown)
        )

    @admin.display(description="last 24 h")
    def stats_column(self, obj: ShownTask) -> SafeString:
        """Runs (counted by their last attempt), how many succeeded, the attempts they took, durations."""
        stats = obj.stats
        rows = [
            ("runs", str(stats.runs), "Runs whose last attempt ended in the window"),
            ("success", percent(stats.success_rate), "Runs that succeeded, on whichever attempt"),
            ("attempts/run", mean(stats.attempts_per_run), f"{stats.attempts} attempts ended in the window"),
            ("p50", seconds(stats.p50), "Median duration of an attempt"),
            ("p95", seconds(stats.p95), "95th-percentile duration of an attempt"),
        ]
        return format_html(
            '<dl class="qtasks-stats">{}</dl>',
            format_html_join("", '<dt title="{2}">{0}</dt><dd class="qtasks-stat-{0}">{1}</dd>', rows),
        )

    @admin.display(description="last error")
    def last_error(self, obj: ShownTask) -> SafeString | str:
        stats = obj.stats
        if not stats.last_error_uuid:
            return "-"
        return format_html(
            '{} <code class="qtasks-error">{}</code>', task_link(stats.last_error_uuid), stats.last_error
        )

    @admin.display(description="last error")
    def last_error_hidden(self, obj: ShownTask) -> SafeString | str:
        return task_link(obj.stats.last_error_uuid) if obj.stats.last_error_uuid else "-"

    @admin.display(description="live workers")
    def can_run_it(self, obj: ShownTask) -> SafeString:
        if obj.live_workers:
            return format_html_join(", ", "{}", ((breakable(worker.pk),) for worker in obj.live_workers))
        if obj.waiting:
            return format_html(
                '<span class="qtasks-flag">none: {} waiting task(s) cannot run</span>', obj.waiting
            )
        return format_html('<span class="qtasks-note">{}</span>', "none")

    @admin.display(description="waiting")
    def waiting(self, obj: ShownTask) -> SafeString | int:
        return tasks_list_link(obj.waiting, status__exact=TaskStatus.NEW, task_name=obj.name)


def _parameter_text(value: Any) -> str:
    if value is None or value is False or (isinstance(value, str | list | dict) and not value):
        return ""
    if isinstance(value, list | dict):
        return compact_json(value)
    return str(value)


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def mean(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"
