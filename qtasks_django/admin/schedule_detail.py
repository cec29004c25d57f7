"""The read-only panel of a schedule's page: its next firings and its latest runs."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import Schedule
from ..queue.schedules import ScheduleStore
from ..schedules.scheduler import Scheduler
from ..tasks.app import get_app
from ..timing import InvalidTiming, parse_zone
from .common import APP_LABEL, format_duration, format_time, status_badge, task_link

#: How many firings ahead, and how many runs back, the page shows.
UPCOMING_SHOWN = 5
HISTORY_SHOWN = 20
#: After a firing that is already past: no worker has made it yet (none runs, or all are busy).
OVERDUE = format_html(' <span class="qtasks-flag" title="{}">overdue</span>', "no worker has fired it yet")


def render_upcoming(schedule: Schedule) -> SafeString | str:
    """The next firings, in the schedule's own zone and in the user's."""
    if not schedule.enabled:
        return "- (paused)"
    try:
        zone = parse_zone(schedule.timezone)
        times = Scheduler(get_app()).upcoming(schedule, UPCOMING_SHOWN)
    except InvalidTiming as exc:
        return f"- (the timing is invalid: {exc})"
    if not times:
        return "-"
    now = timezone.now()
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}{}</td></tr>",
        ((in_zone(t, zone), format_time(t), OVERDUE if t < now else "") for t in times),
    )
    return format_html(
        '<table class="qtasks-upcoming"><thead><tr><th>in {}</th><th>your time</th></tr></thead>'
        "<tbody>{}</tbody></table>",
        zone.key,
        rows,
    )


def in_zone(moment: datetime, zone: ZoneInfo) -> str:
    """``2026-11-22 03:00:00 CET``: the admin's format, in ``zone``, with the zone's abbreviation."""
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


def render_history(schedule: Schedule) -> SafeString | str:
    """The latest runs, newest first: status, firing, start, end, duration, each a link."""
    runs = list(ScheduleStore().history(schedule.pk, HISTORY_SHOWN))
    if not runs:
        return "- (no run yet)"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                task_link(run.pk),
                status_badge(run.status, run.get_status_display()),
                format_time(run.scheduled_for) if run.scheduled_for else "run now",
                format_time(run.started_at),
                format_time(run.finished_at),
                format_duration(run.duration),
            )
            for run in runs
        ),
    )
    return format_html(
        '<table class="qtasks-history"><thead><tr><th>task</th><th>status</th><th>fired for</th>'
        "<th>started</th><th>finished</th><th>duration</th></tr></thead><tbody>{}</tbody></table>"
        '<p><a href="{}">all runs</a></p>',
        rows,
        all_runs_url(schedule),
    )


def all_runs_url(schedule: Schedule) -> str:
    """The task list filtered by this schedule."""
    return f"{reverse(f'admin:{APP_LABEL}_taskrecord_changelist')}?{urlencode({'schedule': schedule.pk})}"
