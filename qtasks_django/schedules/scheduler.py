"""``Scheduler``: keep declared schedules in the database, and fire the due ones exactly once.

Every worker runs one (unless started with ``--no-schedules``). There is no leader: each
firing is claimed by a compare-and-set in the transaction that inserts its task
(``queue.schedules``), so whichever worker comes first makes it and the others make
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from django.conf import settings as django_settings
from django.db import IntegrityError
from django.utils import timezone

from ..conf import settings
from ..exceptions import QTasksError
from ..models import MissedRuns, Schedule
from ..queue.rows import NewRow
from ..queue.schedules import Firing, ScheduleStore, SyncCounts, declared_origins
from ..tasks.enqueue import as_task, build_row
from ..tasks.results import Task
from ..timing import InvalidTiming, Timing
from .declarations import call_of, declared, timing_of

if TYPE_CHECKING:
    from ..tasks.app import QueueTasks

logger = logging.getLogger("qtasks_django.schedules")
#: Syncs of workers that start together can collide on a new schedule's name, once each.
SYNC_ATTEMPTS = 3


class Scheduler:
    """The schedules of ``app`` in the database ``using``: sync, fire, run now, look ahead."""

    def __init__(self, app: QueueTasks, using: str = "default") -> None:
        self.app = app
        self.store = ScheduleStore(using)

    def sync(self) -> SyncCounts:
        """Write the schedules code and settings declare; disable those no longer declared."""
        found, problems = declared(self.app)
        for problem in problems:
            logger.error("%s; it is not scheduled (manage.py check names it too)", problem)
        for attempt in range(SYNC_ATTEMPTS):
            try:
                counts = self.store.sync_declared(
                    found,
                    origins=declared_origins(),
                    next_fire_at=lambda fields: self.first_firing(timing_of(fields)),
                )
                break
            except IntegrityError:
                # Another worker starting at the same moment created a row first: sync
                # again against the rows it wrote.
                if attempt == SYNC_ATTEMPTS - 1:
                    raise
        if counts.created or counts.updated or counts.removed:
            logger.info(
                "schedules synced: %d created, %d updated, %d disabled (no longer declared)",
                counts.created,
                counts.updated,
                counts.removed,
            )
        return counts

    def first_firing(self, timing: Timing, after: datetime | None = None) -> datetime:
        """When a new (or changed, or resumed) schedule fires first: its next time after now."""
        return to_db(timing.next_after(aware(after or timezone.now())))

    def fire_due(self, now: datetime | None = None) -> datetime | None:
        """Fire every due schedule of a task this process knows; return when the next firing is."""
        now = aware(now or timezone.now())
        names = list(self.app.tasks)
        for schedule in self.store.due(to_db(now), names):
            self._fire(schedule, now)
        upcoming = self.store.next_fire_at(names)
        return None if upcoming is None else aware(upcoming)

    def run_now(self, schedule: Schedule, *, task_uuid: UUID | None = None) -> Task:
        """Enqueue the schedule's task at once, outside its timetable; its next firing stays.

        ``task_uuid`` names the task (the admin's button fixes it when the page is drawn,
        so a form submitted twice makes one task: the second insert is refused).
        """
        row = self._row(schedule, None)
        if task_uuid is not None:
            row.fields["uuid"] = task_uuid
        self.store.run_now(schedule, row)
        return as_task(row)  # for a unique task already waiting, that task

    def upcoming(self, schedule: Schedule, count: int = 5) -> list[datetime]:
        """The schedule's next ``count`` firings (aware, UTC); none while it is disabled."""
        if not schedule.enabled or schedule.next_fire_at is None:
            return []
        first = aware(schedule.next_fire_at)
        return [first, *timing_of(vars(schedule)).upcoming(first, count - 1)] if count > 0 else []

    def _fire(self, schedule: Schedule, now: datetime) -> None:
        assert schedule.next_fire_at is not None  # due() returns only scheduled rows
        expected = schedule.next_fire_at
        try:
            timing = timing_of(vars(schedule))
        except InvalidTiming as exc:  # changed behind the admin's back, or a zone the system lost
            self.store.fire(schedule, Firing(expected, None, [], None, error=f"not firing: {exc}"))
            logger.error("schedule %r stopped: %s", schedule.name, exc)
            return
        # Only "all" makes more than one task; the others need only the latest firing time.
        limit = settings.SCHEDULE_CATCH_UP_MAX if schedule.missed_runs == MissedRuns.ALL else 1
        times, left_out = timing.due(aware(expected), now, limit)
        chosen = choose(schedule.missed_runs, times, now, timedelta(seconds=settings.SCHEDULE_MISFIRE_GRACE))
        missed = len(times) + left_out - 1
        try:
            rows, error = [self._row(schedule, moment) for moment in chosen], ""
        except QTasksError as exc:  # the task or its signature changed since the schedule was saved
            rows, error = [], f"firing at {times[-1].isoformat()} made no task: {exc}"
            logger.error("schedule %r: %s", schedule.name, error)
        firing = Firing(
            expected=expected,
            next_fire_at=to_db(timing.next_after(times[-1])),
            rows=rows,
            fired_for=to_db(chosen[-1]) if chosen else None,
            error=error,
        )
        if self.store.fire(schedule, firing) and missed:
            logger.warning(
                "schedule %r: %d firing(s) missed while no worker fired it; missed_runs=%r made %d task(s)",
                schedule.name,
                missed,
                schedule.missed_runs,
                len(rows),
            )

    def _row(self, schedule: Schedule, fire_time: datetime | None) -> NewRow:
        row = build_row(self.app, call_of(self.app, vars(schedule)))
        row.fields["schedule_id"] = schedule.pk
        row.fields["scheduled_for"] = None if fire_time is None else to_db(fire_time)
        return row


def choose(policy: str, times: Sequence[datetime], now: datetime, grace: timedelta) -> list[datetime]:
    """Which of the due firing ``times`` (oldest first) get a task, by the missed-runs ``policy``.

    On time (one firing, within ``grace``) every policy fires it. After an outage:
    ``once`` makes one task for the whole window, ``all`` one per firing (already
    bounded by ``SCHEDULE_CATCH_UP_MAX``), ``skip`` none, unless the latest is still on time.
    """
    if not times:
        return []
    if policy == MissedRuns.ALL:
        return list(times)
    if policy == MissedRuns.SKIP:
        return [times[-1]] if now - times[-1] <= grace else []
    return [times[-1]]


def aware(moment: datetime) -> datetime:
    """A database datetime as an aware one (naive ones are local time when ``USE_TZ`` is off)."""
    if timezone.is_aware(moment):
        return moment
    return timezone.make_aware(moment, timezone.get_default_timezone())


def to_db(moment: datetime) -> datetime:
    """An aware datetime as the database columns hold it (naive local time when ``USE_TZ`` is off)."""
    if getattr(django_settings, "USE_TZ", True):
        return moment.astimezone(UTC)
    return timezone.make_naive(moment, timezone.get_default_timezone())
