"""The dashboard: what the task system is doing now, on one page.

Counts by status (waiting and running now; ended in the last hour and day), throughput per
minute over the last hour, queue depth, paused queues, the oldest waiting task, workers,
and waiting tasks no live worker can run. Each number is one indexed query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncMinute
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from ..models import Schedule, TaskRecord, WorkerRecord
from ..status import TaskStatus
from .chart import Chart, MinuteCount, minutes_of, throughput_chart
from .common import format_time
from .queues import paused_queue_names
from .stats import WaitingGroup, heartbeat_deadline, waiting_without_live_worker

CHART_MINUTES = 60
FAILED_STATUSES = (TaskStatus.ERROR, TaskStatus.RETRY, TaskStatus.CANCEL)
ENDED_STATUSES = (TaskStatus.SUCCESS, TaskStatus.ERROR, TaskStatus.CANCEL, TaskStatus.RETRY)


class QueueDepth(TypedDict):
    """The new tasks of one queue: due, not yet due, and when the oldest due one was made."""

    queue: str
    waiting: int
    delayed: int
    oldest: datetime | None


@dataclass(kw_only=True)
class Dashboard:
    """Everything the dashboard page shows, read at ``now``."""

    now: datetime
    waiting: int = 0
    """New tasks that are due (a free worker would claim them)."""
    delayed: int = 0
    """New tasks whose eta is still ahead."""
    running: int = 0
    ended_last_hour: dict[str, int] = field(default_factory=dict)
    ended_last_day: dict[str, int] = field(default_factory=dict)
    chart: Chart | None = None
    queues: list[QueueDepth] = field(default_factory=list)
    paused_queues: list[str] = field(default_factory=list)
    """The names of the paused queues (no worker starts their tasks)."""
    oldest_waiting: TaskRecord | None = None
    workers_alive: int = 0
    workers_gone: int = 0
    """Workers that neither stopped cleanly nor sent a recent heartbeat."""
    unknown_waiting: list[WaitingGroup] = field(default_factory=list)
    schedules_enabled: int = 0
    next_firing: datetime | None = None
    """The next firing of an enabled schedule (``None``: none is enabled)."""

    @property
    def next_firing_text(self) -> str:
        return format_time(self.next_firing)

    @property
    def as_of(self) -> str:
        return format_time(self.now)

    @property
    def status_rows(self) -> list[dict[str, Any]]:
        """One row per ended status: its label and its counts over the hour and the day."""
        return [
            {
                "status": status.value,
                "label": status.label,
                "hour": self.ended_last_hour.get(status.value, 0),
                "day": self.ended_last_day.get(status.value, 0),
            }
            for status in ENDED_STATUSES
        ]


def collect_dashboard(now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    board = Dashboard(now=now)
    _count_active(board)
    board.ended_last_hour = _ended_since(now - timedelta(hours=1))
    board.ended_last_day = _ended_since(now - timedelta(days=1))
    board.chart = throughput_chart(minutes_of(_per_minute(now), end=now, minutes=CHART_MINUTES))
    board.queues = list(
        TaskRecord.objects.filter(status=TaskStatus.NEW)
        .values("queue")
        .annotate(
            waiting=Count("pk", filter=Q(eta__lte=now)),
            delayed=Count("pk", filter=Q(eta__gt=now)),
            oldest=Min("created_at", filter=Q(eta__lte=now)),
        )
        .order_by("queue")
    )
    board.paused_queues = paused_queue_names()
    board.oldest_waiting = (
        TaskRecord.objects.filter(status=TaskStatus.NEW, eta__lte=now)
        .only("uuid", "task_name", "queue", "status", "created_at")
        .order_by("created_at")
        .first()
    )
    _count_workers(board)
    board.unknown_waiting = waiting_without_live_worker()
    _count_schedules(board)
    return board


def _count_schedules(board: Dashboard) -> None:
    # The partial index on enabled schedules' next firing answers it.
    counts = Schedule.objects.filter(enabled=True).aggregate(n=Count("pk"), next=Min("next_fire_at"))
    board.schedules_enabled, board.next_firing = counts["n"], counts["next"]


def _count_active(board: Dashboard) -> None:
    active = TaskRecord.objects.filter(status__in=[TaskStatus.NEW, TaskStatus.PROCESS])
    counts = active.aggregate(
        waiting=Count("pk", filter=Q(status=TaskStatus.NEW, eta__lte=board.now)),
        delayed=Count("pk", filter=Q(status=TaskStatus.NEW, eta__gt=board.now)),
        running=Count("pk", filter=Q(status=TaskStatus.PROCESS)),
    )
    board.waiting, board.delayed, board.running = counts["waiting"], counts["delayed"], counts["running"]


def _ended_since(since: datetime) -> dict[str, int]:
    rows = TaskRecord.objects.filter(finished_at__gte=since).values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


def _per_minute(now: datetime) -> list[MinuteCount]:
    since = now.replace(second=0, microsecond=0) - timedelta(minutes=CHART_MINUTES - 1)
    rows = (
        TaskRecord.objects.filter(finished_at__gte=since)
        .annotate(minute=TruncMinute("finished_at"))
        .values("minute")
        .annotate(
            succeeded=Count("pk", filter=Q(status=TaskStatus.SUCCESS)),
            failed=Count("pk", filter=Q(status__in=FAILED_STATUSES)),
        )
        .order_by("minute")
    )
    return [MinuteCount(**row) for row in rows]


def _count_workers(board: Dashboard) -> None:
    running = WorkerRecord.objects.filter(stopped_at__isnull=True)
    deadline = heartbeat_deadline(board.now)
    counts = running.aggregate(
        alive=Count("pk", filter=Q(heartbeat_at__gte=deadline)),
        gone=Count("pk", filter=Q(heartbeat_at__lt=deadline)),
    )
    board.workers_alive, board.workers_gone = counts["alive"], counts["gone"]


def dashboard_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """The dashboard page (needs the permission to view tasks)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Task dashboard",
        "opts": model_admin.model._meta,
        "board": collect_dashboard(),
    }
    return TemplateResponse(request, "admin/qtasks_django/dashboard.html", context)
