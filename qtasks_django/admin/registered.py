"""The registered tasks page: each task's ``TaskExecSchema`` parameters beside how it has done.

The rows are written by workers when they start, and by this page itself: viewing it
first stores what the web process has registered (only what changed), so a task declared
in the project shows even before a worker ran it. Statistics cover the attempts that
ended in the last ``STATS_WINDOW``. A task with waiting work that no live worker can run
is flagged, and so are waiting task names nobody registered.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import RegisteredTask, TaskRecord
from ..status import TaskStatus
from ..tasks.registration import sync_registered_tasks
from .common import (
    APP_LABEL,
    ReadOnlyAdmin,
    breakable,
    can_view_task_data,
    compact_json,
    format_time,
    task_link,
)
from .stats import STATS_WINDOW, TaskStats, live_workers_by_task, task_stats, waiting_without_live_worker

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    from ..models import WorkerRecord

    class Shown(TypedDict):
        """What ``annotate_registered`` sets on each row the page shows."""

        stats: TaskStats
        live_workers: list[WorkerRecord]
        waiting: int

    # A row of the page: a RegisteredTask with the attributes above.
    ShownTask = WithAnnotations[RegisteredTask, Shown]

logger = logging.getLogger(__name__)

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


class RegisteredTaskChangeList(ChangeList):
    """Attaches each shown task's statistics, live workers and waiting count to its row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        annotate_registered(list(self.result_list))


def annotate_registered(rows: list[ShownTask]) -> None:
    """Set ``stats``, ``live_workers`` and ``waiting`` on each row (a few queries for the page)."""
    names = [row.name for row in rows]
    stats = task_stats(names, since=timezone.now() - STATS_WINDOW)
    workers = live_workers_by_task(names, {row.name: row.queue for row in rows})
    waiting = dict(
        TaskRecord.objects.filter(status=TaskStatus.NEW, task_name__in=names)
        .values_list("task_name")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        row.stats = stats.get(row.name, TaskStats())
        row.live_workers = workers.get(row.name, [])
        row.waiting = waiting.get(row.name, 0)


@admin.register(RegisteredTask)
class RegisteredTaskAdmin(ReadOnlyAdmin):
    list_display = (
        "name_column",
        "func_column",
        "parameters",
        "runs",
        "success_rate",
        "attempts",
        "p50",
        "p95",
        "last_error",
        "can_run_it",
        "waiting",
    )
    search_fields = ("name", "func", "description")
    list_filter = ("queue", "awaiting", "echo")
    change_list_template = "admin/qtasks_django/registeredtask/change_list.html"
    list_display_links = ("name_column",)
    readonly_fields = ("name", "func", "parameters", "extra", "can_run_it", "statistics", "updated")
    fields = readonly_fields

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return RegisteredTaskChangeList

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        if can_view_task_data(request):
            return self.list_display
        return tuple("last_error_hidden" if name == "last_error" else name for name in self.list_display)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            sync_registered_tasks()
        except Exception:  # the page still shows what workers stored
            logger.exception("storing the web process's registered tasks failed")
        extra = {
            "unknown_waiting": waiting_without_live_worker(),
            "stats_window": f"{STATS_WINDOW.total_seconds() / 3600:g} hours",
        }
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        row = super().get_object(request, object_id, from_field)
        if row is not None:
            annotate_registered([row])
        return row

    @admin.display(description="name", ordering="name")
    def name_column(self, obj: RegisteredTask) -> SafeString:
        return breakable(obj.name)

    @admin.display(description="function", ordering="func")
    def func_column(self, obj: RegisteredTask) -> SafeString:
        return breakable(obj.func)

    @admin.display(description="updated")
    def updated(self, obj: RegisteredTask) -> str:
        return format_time(obj.updated_at)

    @admin.display(description="parameters")
    def parameters(self, obj: RegisteredTask) -> SafeString:
        entries = ((label, _parameter_text(getattr(obj, field))) for field, label in PARAMETERS)
        shown = [(label, breakable(text)) for label, text in entries if text]
        return format_html(
            '<dl class="qtasks-params">{}</dl>', format_html_join("", "<dt>{}</dt><dd>{}</dd>", shown)
        )

    @admin.display(description="runs (24 h)")
    def runs(self, obj: ShownTask) -> int:
        return obj.stats.runs

    @admin.display(description="success rate")
    def success_rate(self, obj: ShownTask) -> str:
        rate = obj.stats.success_rate
        return "-" if rate is None else f"{rate:.1%}"

    @admin.display(description="attempts per run")
    def attempts(self, obj: ShownTask) -> SafeString | str:
        stats = obj.stats
        if stats.attempts_per_run is None:
            return "-"
        return format_html(
            '<span title="{} attempts ended in the window">{}</span>',
            stats.attempts,
            _mean(stats.attempts_per_run),
        )

    @admin.display(description="p50 duration")
    def p50(self, obj: ShownTask) -> str:
        return _seconds(obj.stats.p50)

    @admin.display(description="p95 duration")
    def p95(self, obj: ShownTask) -> str:
        return _seconds(obj.stats.p95)

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
            return format_html_join(", ", "{}", ((worker.pk,) for worker in obj.live_workers))
        if obj.waiting:
            return format_html(
                '<span class="qtasks-flag">none: {} waiting task(s) cannot run</span>', obj.waiting
            )
        return format_html('<span class="qtasks-note">{}</span>', "none")

    @admin.display(description="waiting")
    def waiting(self, obj: ShownTask) -> SafeString | int:
        if not obj.waiting:
            return 0
        query = urlencode({"status__exact": TaskStatus.NEW, "task_name": obj.name})
        url = f"{reverse(f'admin:{APP_LABEL}_taskrecord_changelist')}?{query}"
        return format_html('<a href="{}">{}</a>', url, obj.waiting)

    @admin.display(description="statistics (24 h)")
    def statistics(self, obj: ShownTask) -> SafeString:
        stats = obj.stats
        rate = "-" if stats.success_rate is None else f"{stats.success_rate:.1%}"
        per_run = "-" if stats.attempts_per_run is None else _mean(stats.attempts_per_run)
        return format_html(
            "{} runs: {} succeeded, {} failed, {} cancelled; success rate {}; "
            "{} attempts per run ({} attempts ended); p50 {}, p95 {}",
            stats.runs,
            stats.succeeded,
            stats.failed,
            stats.cancelled,
            rate,
            per_run,
            stats.attempts,
            _seconds(stats.p50),
            _seconds(stats.p95),
        )


def _parameter_text(value: Any) -> str:
    if value is None or value is False or (isinstance(value, str | list | dict) and not value):
        return ""
    if isinstance(value, list | dict):
        return compact_json(value)
    return str(value)


def _mean(value: float) -> str:
    return f"{value:.1f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"
