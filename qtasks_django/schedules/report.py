"""What ``qtasks_schedules`` shows of a schedule: a JSON-ready dict of its row and its next firings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..models import Schedule
from ..timing import InvalidTiming
from .declarations import timing_of
from .scheduler import Scheduler, aware


def state(schedule: Schedule) -> str:
    """``"enabled"``, ``"paused"``, or ``"removed"`` (gone from the code or settings that declared it)."""
    if schedule.removed_at is not None:
        return "removed"
    return "enabled" if schedule.enabled else "paused"


def report(scheduler: Scheduler, schedule: Schedule, upcoming: int = 0) -> dict[str, Any]:
    """The schedule as plain values; datetimes aware, in UTC (``next_fire_at_local``: in its zone).

    ``upcoming`` > 0 adds the next firings (none while paused). A row whose timing no
    longer parses (a zone the system lost) says why in ``timing`` instead of failing.
    """
    try:
        timing = timing_of(vars(schedule))
        described, zone = timing.describe(), timing.zone
    except InvalidTiming as exc:
        described, zone = f"invalid: {exc}", ZoneInfo("UTC")
    next_at = _utc(schedule.next_fire_at) if schedule.enabled else None
    shown: dict[str, Any] = {
        "name": schedule.name,
        "task": schedule.task_name,
        "timing": described,
        "cron": schedule.cron or None,
        "interval_seconds": schedule.interval.total_seconds() if schedule.interval is not None else None,
        "timezone": zone.key,
        "state": state(schedule),
        "origin": schedule.origin,
        "missed_runs": schedule.missed_runs,
        "next_fire_at": next_at,
        "next_fire_at_local": next_at.astimezone(zone) if next_at else None,
        "last_fired_at": _utc(schedule.last_fired_at),
        "last_task_uuid": str(schedule.last_task_uuid) if schedule.last_task_uuid else None,
        "last_error": schedule.last_error,
    }
    if upcoming > 0:
        try:
            times = scheduler.upcoming(schedule, upcoming)
        except InvalidTiming:
            times = []
        shown["upcoming"] = [moment.astimezone(UTC) for moment in times]
    return shown


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment).astimezone(UTC)
