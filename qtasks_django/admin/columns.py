"""The columns of the tasks list: badges, times, the eta of a delayed task, names that wrap.

Every time shows in the admin's one format (``common.format_time``); in the list's narrow
columns it wraps between the date and the time rather than widening the table.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import TaskRecord
from ..status import TaskStatus
from .common import breakable, format_age, format_duration, format_time, status_badge

#: An eta this close to the task's creation means "due at once", and the list leaves it out.
ETA_SHOWN_FROM = timedelta(seconds=1)


def time_cell(moment: datetime | None) -> SafeString | str:
    """A time in the admin's format, free to wrap between its date and its clock time only."""
    text = format_time(moment)
    if moment is None:
        return text
    day, clock = text.split(" ")
    return format_html('<span class="qtasks-time">{}</span> <span class="qtasks-time">{}</span>', day, clock)


class TaskColumns:
    """The list's display methods; ``TaskRecordAdmin`` mixes them in."""

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: TaskRecord) -> SafeString:
        badge = status_badge(obj.status, obj.get_status_display())
        if obj.cancel_requested_at and obj.status == TaskStatus.PROCESS:
            return format_html('{} <span class="qtasks-note">cancel requested</span>', badge)
        return badge

    @admin.display(description="task name", ordering="task_name")
    def task_name_column(self, obj: TaskRecord) -> SafeString:
        return breakable(obj.task_name)

    @admin.display(description="worker id")
    def worker_column(self, obj: TaskRecord) -> SafeString | str:
        return breakable(obj.worker_id) if obj.worker_id else "-"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: TaskRecord) -> SafeString | str:
        return time_cell(obj.created_at)

    @admin.display(description="eta")
    def eta_column(self, obj: TaskRecord) -> SafeString | str:
        """A delayed task's eta: how far ahead while it waits for it, then the time itself.

        Every row has an eta (a task due at once gets its creation time); only one set
        apart from the creation (a countdown, a retry's back-off, run now) is shown.
        """
        if obj.eta is None or obj.eta - obj.created_at < ETA_SHOWN_FROM:
            return "-"
        now = timezone.now()
        if obj.status == TaskStatus.NEW and obj.eta > now:
            return format_html(
                '<span class="qtasks-eta-ahead" title="{}">{}</span>',
                format_time(obj.eta),
                format_age(obj.eta, now),
            )
        return time_cell(obj.eta)

    @admin.display(description="started")
    def started(self, obj: TaskRecord) -> SafeString | str:
        return time_cell(obj.started_at)

    @admin.display(description="finished", ordering="finished_at")
    def finished(self, obj: TaskRecord) -> SafeString | str:
        return time_cell(obj.finished_at)

    @admin.display(description="duration")
    def run_time(self, obj: TaskRecord) -> str:
        return format_duration(obj.duration)

    @admin.display(description="uuid")
    def short_uuid(self, obj: TaskRecord) -> str:
        return str(obj.uuid)[:8]
