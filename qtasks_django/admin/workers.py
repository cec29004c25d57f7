"""The workers page: each ``qtasks_worker`` process, alive or gone, and what it runs."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import TaskRecord, WorkerRecord
from ..status import TaskStatus
from .common import (
    ReadOnlyAdmin,
    format_age,
    format_time,
    status_badge,
    task_link,
    tasks_list_link,
)
from .stats import heartbeat_deadline, worker_is_alive

MAX_RUNNING_SHOWN = 50

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class Running(TypedDict):
        """What ``get_queryset`` annotates each worker with: how many tasks it runs."""

        running: int

    # A row of the page: a WorkerRecord with the annotation above.
    ListedWorker = WithAnnotations[WorkerRecord, Running]


class AliveFilter(admin.SimpleListFilter):
    """Alive (a recent heartbeat, not stopped) or gone."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("alive", "alive"), ("gone", "gone")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        alive = Q(stopped_at__isnull=True, heartbeat_at__gte=heartbeat_deadline())
        if self.value() == "alive":
            return queryset.filter(alive)
        if self.value() == "gone":
            return queryset.exclude(alive)
        return queryset


@admin.register(WorkerRecord)
class WorkerRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "state",
        "host",
        "pid",
        "queues",
        "concurrency",
        "heartbeat_age",
        "running_count",
        "started",
        "stopped",
    )
    list_filter = (AliveFilter, "host")
    search_fields = ("id", "host")
    readonly_fields = (
        "id",
        "state",
        "host",
        "pid",
        "queues",
        "concurrency",
        "started",
        "heartbeat_age",
        "stopped",
        "running_tasks",
        "registered_tasks_list",
    )
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkerRecord]:
        running = (
            TaskRecord.objects.filter(status=TaskStatus.PROCESS, worker_id=OuterRef("pk"))
            .order_by()
            .values("worker_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(running=Coalesce(Subquery(running, output_field=IntegerField()), 0))
        )

    @admin.display(description="state")
    def state(self, obj: WorkerRecord) -> SafeString:
        if worker_is_alive(obj):
            return format_html('<span class="qtasks-badge qtasks-worker-alive">{}</span>', "alive")
        reason = "stopped" if obj.stopped_at else "gone"
        return format_html('<span class="qtasks-badge qtasks-worker-gone">{}</span>', reason)

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: WorkerRecord) -> str:
        return format_time(obj.started_at)

    @admin.display(description="stopped", ordering="stopped_at")
    def stopped(self, obj: WorkerRecord) -> str:
        return format_time(obj.stopped_at)

    @admin.display(description="heartbeat", ordering="-heartbeat_at")
    def heartbeat_age(self, obj: WorkerRecord) -> str:
        return format_age(obj.heartbeat_at)

    @admin.display(description="running tasks", ordering="running")
    def running_count(self, obj: ListedWorker) -> SafeString | int:
        return tasks_list_link(obj.running, status__exact=TaskStatus.PROCESS, worker_id=obj.pk)

    @admin.display(description="running tasks")
    def running_tasks(self, obj: WorkerRecord) -> SafeString | str:
        tasks = TaskRecord.objects.filter(status=TaskStatus.PROCESS, worker_id=obj.pk).only(
            "uuid", "task_name", "status", "started_at"
        )[:MAX_RUNNING_SHOWN]
        if not tasks:
            return "-"
        return format_html(
            '<ul class="qtasks-related">{}</ul>',
            format_html_join(
                "",
                "<li>{} {} {} since {}</li>",
                (
                    (
                        task_link(t.pk),
                        t.task_name,
                        status_badge(t.status, t.get_status_display()),
                        _since(t.started_at),
                    )
                    for t in tasks
                ),
            ),
        )

    @admin.display(description="registered tasks")
    def registered_tasks_list(self, obj: WorkerRecord) -> str:
        names = list(obj.registered_tasks.order_by("name").values_list("name", flat=True))
        return ", ".join(names) or "-"


def _since(moment: datetime | None) -> str:
    return format_age(moment, timezone.now()) if moment else "-"
