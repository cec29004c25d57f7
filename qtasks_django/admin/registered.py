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

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import RegisteredTask, TaskRecord
from ..status import TaskStatus
from ..tasks.registration import sync_registered_tasks
from .common import ReadOnlyAdmin, can_view_task_data, format_time
from .flow import render_declaration
from .registered_columns import RegisteredColumns, mean, percent, seconds
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
class RegisteredTaskAdmin(RegisteredColumns, ReadOnlyAdmin):
    list_display = ("task", "parameters", "stats_column", "last_error", "can_run_it", "waiting")
    search_fields = ("name", "func", "description")
    list_filter = ("queue", "awaiting", "echo")
    change_list_template = "admin/qtasks_django/registeredtask/change_list.html"
    list_display_links = None  # the task column links its name itself, not the function below it
    readonly_fields = (
        "name",
        "func",
        "parameters",
        "flow_control",
        "extra",
        "can_run_it",
        "statistics",
        "updated",
    )
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

    @admin.display(description="updated")
    def updated(self, obj: RegisteredTask) -> str:
        return format_time(obj.updated_at)

    @admin.display(description="flow control")
    def flow_control(self, obj: RegisteredTask) -> SafeString | str:
        """Its declared unique, concurrency and rate options, in words."""
        return render_declaration(obj.flow)

    @admin.display(description="statistics (24 h)")
    def statistics(self, obj: ShownTask) -> SafeString:
        stats = obj.stats
        return format_html(
            "{} runs: {} succeeded, {} failed, {} cancelled; success rate {}; "
            "{} attempts per run ({} attempts ended); p50 {}, p95 {}",
            stats.runs,
            stats.succeeded,
            stats.failed,
            stats.cancelled,
            percent(stats.success_rate),
            mean(stats.attempts_per_run),
            stats.attempts,
            seconds(stats.p50),
            seconds(stats.p95),
        )
