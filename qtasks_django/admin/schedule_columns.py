"""The schedules list's columns: timing, state, origin, next and last firing, success rate.

The list's rows carry what ``annotate_schedules`` adds (the outcome counts of each
schedule's tasks and the status of its last one), so the page makes one query whatever
the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from ..models import Schedule, TaskRecord
from ..schedules.declarations import timing_of
from ..status import TaskStatus
from ..timing import InvalidTiming
from .columns import time_cell
from .common import breakable, format_time, status_badge, task_link

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class Outcomes(TypedDict):
        """What ``annotate_schedules`` adds to each row."""

        succeeded: int
        failed: int
        cancelled: int
        last_status: str | None

    # A row of the list: a Schedule with the annotations above.
    ListedSchedule = WithAnnotations[Schedule, Outcomes]

#: The start of the last error the list shows (the schedule's page shows all of it).
LIST_ERROR_CHARS = 100
#: The statuses a run ends in; a ``retry`` row is an attempt that was tried again, not an end.
ENDED = {"succeeded": TaskStatus.SUCCESS, "failed": TaskStatus.ERROR, "cancelled": TaskStatus.CANCEL}


@dataclass(frozen=True)
class SuccessRate:
    """How a schedule's recorded runs ended (intermediate attempts left out)."""

    succeeded: int
    failed: int
    cancelled: int

    @property
    def ended(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def rate(self) -> float | None:
        """``succeeded / ended``; ``None`` before any run ended."""
        return self.succeeded / self.ended if self.ended else None

    def describe(self) -> str:
        """``"75% (3 of 4; 1 failed, 0 cancelled)"``, or ``"-"`` before any run ended."""
        if self.rate is None:
            return "-"
        return f"{self.rate:.0%} ({self.counts()})"

    def counts(self) -> str:
        """``"3 of 4; 1 failed, 0 cancelled"``."""
        return f"{self.succeeded} of {self.ended}; {self.failed} failed, {self.cancelled} cancelled"


def outcome_counts() -> dict[str, Count]:
    """The aggregates of a schedule's runs by end status (on ``tasks``, the reverse relation)."""
    return {name: Count("tasks", filter=Q(tasks__status=status)) for name, status in ENDED.items()}


def annotate_schedules(queryset: QuerySet[Schedule]) -> QuerySet[Schedule]:
    """The schedules with their outcome counts and the status of their last task."""
    last_status = TaskRecord.objects.filter(pk=OuterRef("last_task_uuid")).values("status")[:1]
    return queryset.annotate(**outcome_counts(), last_status=Subquery(last_status))


def success_rate_of(schedule: Schedule) -> SuccessRate:
    """The success rate of one schedule's recorded runs."""
    counts = TaskRecord.objects.filter(schedule=schedule).aggregate(
        **{name: Count("pk", filter=Q(status=status)) for name, status in ENDED.items()}
    )
    return SuccessRate(**counts)


def describe_timing(schedule: Schedule) -> str:
    """``"At 03:00 (Europe/Berlin)"``, ``"Every 5 minutes"``; what is wrong with a broken one."""
    try:
        return timing_of(vars(schedule)).describe()
    except InvalidTiming as exc:
        return f"invalid: {exc}"


class ScheduleColumns:
    """The list's display methods; ``ScheduleAdmin`` mixes them in."""

    @admin.display(description="name", ordering="name")
    def name_column(self, obj: Schedule) -> SafeString:
        return breakable(obj.name)

    @admin.display(description="task", ordering="task_name")
    def task_column(self, obj: Schedule) -> SafeString:
        return breakable(obj.task_name)

    @admin.display(description="timing")
    def timing(self, obj: Schedule) -> SafeString:
        return breakable(describe_timing(obj))  # a zone such as America/Argentina/Buenos_Aires

    @admin.display(description="queue", ordering="queue")
    def queue_column(self, obj: Schedule) -> SafeString:
        if not obj.queue:
            return format_html('<span class="qtasks-note">{}</span>', "task's own")
        return breakable(obj.queue)

    @admin.display(description="state", ordering="enabled")
    def state(self, obj: Schedule) -> SafeString:
        """Enabled or paused, and where it is declared (a schedule gone from code says so)."""
        label = "enabled" if obj.enabled else "paused"
        badge = format_html('<span class="qtasks-badge qtasks-schedule-{}">{}</span>', label, label)
        if obj.removed_at is not None:
            return format_html(
                '{}<br>{} <span class="qtasks-flag" title="{}">removed</span>',
                badge,
                obj.origin,
                f"no longer declared since {format_time(obj.removed_at)}: declare it again, or delete it",
            )
        return format_html(
            '{}<br><span class="qtasks-note" title="{}">{}</span>',
            badge,
            obj.get_origin_display(),
            obj.origin,
        )

    @admin.display(description="next firing", ordering="next_fire_at")
    def next_firing(self, obj: Schedule) -> SafeString | str:
        return time_cell(obj.next_fire_at) if obj.enabled else "-"

    @admin.display(description="last fired", ordering="last_fired_at")
    def last_fired(self, obj: ListedSchedule) -> SafeString | str:
        """When it fired last, its last task with its status, and why the last firing failed if it did."""
        cell = last_task_cell(obj, getattr(obj, "last_status", None))
        if not obj.last_error:
            return cell
        return format_html(
            '{}<br><span class="qtasks-flag qtasks-schedule-error" title="{}">{}</span>',
            cell,
            obj.last_error,
            Truncator(obj.last_error).chars(LIST_ERROR_CHARS),
        )

    @admin.display(description="success rate")
    def success_rate(self, obj: ListedSchedule) -> SafeString | str:
        rate = SuccessRate(obj.succeeded, obj.failed, obj.cancelled)
        if rate.rate is None:
            return "-"
        return format_html('{}<br><span class="qtasks-note">{}</span>', f"{rate.rate:.0%}", rate.counts())


def last_task_cell(obj: Schedule, status: str | None) -> SafeString | str:
    """When it fired last, and its last task (a link and its status badge)."""
    if obj.last_task_uuid is None:
        return time_cell(obj.last_fired_at)
    if status is None:
        task = format_html("{} (gone)", str(obj.last_task_uuid)[:8])
    else:
        task = format_html(
            "{} {}", task_link(obj.last_task_uuid), status_badge(status, TaskStatus(status).label)
        )
    return format_html("{}<br>{}", time_cell(obj.last_fired_at), task)
