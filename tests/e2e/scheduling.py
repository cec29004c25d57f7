"""Helpers of the schedule e2e tests: admin-made schedules, their firings, and what must hold of them."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from qtasks_django.models import MissedRuns, Schedule, ScheduleOrigin, TaskRecord
from qtasks_django.queue.schedules import ScheduleStore

from .conftest import WorkerProcess, wait_for
from .ledger import Journal, Ledger, wait_ended

#: What a worker logs when the unique (schedule, scheduled_for) refused a second task: the
#: compare-and-set should have stopped it first, so no test may see it.
ALREADY_MADE = "already made"


def make_schedule(
    name: str,
    journal: Journal,
    *,
    first: datetime,
    every: float | None = None,
    cron: str = "",
    missed_runs: str = MissedRuns.ONCE,
) -> Schedule:
    """An admin schedule of ``scheduled_journal(journal)`` first firing at ``first``; workers are told."""
    schedule = Schedule.objects.create(
        name=name,
        task_name="scheduled_journal",
        args=[str(journal)],
        interval=None if every is None else timedelta(seconds=every),
        cron=cron,
        timezone="UTC",
        missed_runs=missed_runs,
        origin=ScheduleOrigin.ADMIN,
        next_fire_at=first,
    )
    ScheduleStore().notify_changed()
    return schedule


def whole_seconds_from_now(seconds: int) -> datetime:
    """A time ``seconds`` (at least) from now on a whole second, so intervals fire on a grid."""
    return timezone.now().replace(microsecond=0) + timedelta(seconds=seconds)


def firings(schedule: Schedule) -> list[TaskRecord]:
    """The tasks ``schedule`` made for its timetable, oldest firing first."""
    return list(
        TaskRecord.objects.filter(schedule=schedule, scheduled_for__isnull=False).order_by("scheduled_for")
    )


def times(schedule: Schedule) -> list[datetime]:
    return [task.scheduled_for for task in firings(schedule)]


def assert_unique(moments: list[datetime]) -> None:
    doubled = sorted({m for m in moments if moments.count(m) > 1})
    assert not doubled, f"firings made twice: {doubled[:5]}"


def assert_consecutive(moments: list[datetime], step: timedelta) -> None:
    """Every firing from the first to the last, each exactly once."""
    assert_unique(moments)
    holes = [(a, b) for a, b in itertools.pairwise(moments) if b - a != step]
    assert not holes, f"{len(holes)} firing(s) not {step} after the one before: {holes[:5]}"


def assert_on_grid(moments: list[datetime], origin: datetime, step: timedelta) -> None:
    off = [m for m in moments if (m - origin) % step]
    assert not off, f"firings off the timetable {origin} + k x {step}: {off[:5]}"


def pause(*schedules: Schedule) -> datetime:
    """Pause ``schedules`` as the admin does (workers told); return when (after the commit)."""
    ScheduleStore().set_enabled([s.pk for s in schedules], False, {})
    return timezone.now()


def wait_tasks_ended(*schedules: Schedule, journal: Journal, timeout: float, check: Any = None) -> Ledger:
    """Wait until every task the schedules made has ended; return their ledger (keyed by uuid)."""
    tasks = {
        str(uuid): uuid
        for uuid in TaskRecord.objects.filter(schedule__in=schedules).values_list("uuid", flat=True)
    }
    return wait_ended(tasks, journal, timeout=timeout, check=check)


def assert_never_refused_by_the_constraint(workers: list[WorkerProcess]) -> None:
    """No worker logged a second task the unique constraint had to refuse."""
    logs = {w.id: w.stderr() for w in workers}
    refused = {wid: [line for line in log.splitlines() if ALREADY_MADE in line] for wid, log in logs.items()}
    assert not any(refused.values()), refused


def lateness(task: TaskRecord) -> float:
    """Seconds from a task's firing time to its row being built (how late the firing was made)."""
    return (task.created_at - task.scheduled_for).total_seconds()


def wait_firings(schedule: Schedule, count: int, *, timeout: float, check: Any = None) -> list[TaskRecord]:
    """Wait until ``schedule`` has made at least ``count`` firings; return them."""

    def enough() -> list[TaskRecord] | None:
        if check:
            check()
        made = firings(schedule)
        return made if len(made) >= count else None

    found: list[TaskRecord] = wait_for(
        enough, timeout=timeout, what=f"{count} firing(s) of {schedule.name}", interval=0.1
    )
    return found


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - timezone.now()).total_seconds()))
