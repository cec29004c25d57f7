"""Schedule rows: which are due, firing one exactly once, and keeping declared ones in step.

A firing is claimed by a compare-and-set: ``UPDATE ... SET next_fire_at = <next> WHERE
id = %s AND next_fire_at = <the one this worker saw>``, in the transaction that inserts
the firing's tasks. Two workers that both see a schedule due both try; the database
lets one UPDATE match and the other (on PostgreSQL it waits for the first to commit,
then re-reads the row) match nothing, so the other inserts nothing. No lock outlives
the transaction and no leader is needed. SQLite serialises the writes and gives the
same answer.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Min
from django.utils import timezone

from .. import notifiers
from ..models import Schedule, ScheduleOrigin, TaskRecord
from . import inserts
from .rows import NewRow

logger = logging.getLogger("qtasks_django.schedules")


@dataclass(frozen=True)
class Firing:
    """What firing a schedule writes: the tasks, and where ``next_fire_at`` moves to."""

    expected: datetime
    """The ``next_fire_at`` the firer read: the compare-and-set matches only that."""
    next_fire_at: datetime | None
    rows: Sequence[NewRow]
    fired_for: datetime | None
    """The latest firing time covered (``last_fired_at``); ``None`` when nothing is fired."""
    error: str = ""
    """Why a firing made no task (its arguments no longer bind, say), shown in the admin."""


class ScheduleStore:
    """Read and write schedule rows in the database ``using``."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    @property
    def _rows(self) -> Any:
        return Schedule.objects.using(self.using)

    def _firable(self, task_names: Collection[str] | None) -> Any:
        rows = self._rows.filter(enabled=True, next_fire_at__isnull=False)
        return rows if task_names is None else rows.filter(task_name__in=list(task_names))

    def next_fire_at(self, task_names: Collection[str] | None = None) -> datetime | None:
        """When the next firing of an enabled schedule of ``task_names`` is (``None``: none)."""
        found: datetime | None = self._firable(task_names).aggregate(at=Min("next_fire_at"))["at"]
        return found

    def due(self, now: datetime, task_names: Collection[str] | None = None) -> list[Schedule]:
        """Return the enabled schedules of ``task_names`` whose next firing is at or before ``now``."""
        return list(self._firable(task_names).filter(next_fire_at__lte=now).order_by("next_fire_at", "pk"))

    def get(self, name: str) -> Schedule | None:
        found: Schedule | None = self._rows.filter(name=name).first()
        return found

    def fire(self, schedule: Schedule, firing: Firing) -> bool:
        """Write ``firing`` if no other worker made it first; return whether this call made it.

        The tasks and the move of ``next_fire_at`` commit together or not at all.
        """
        now = timezone.now()
        changes: dict[str, Any] = {
            "next_fire_at": firing.next_fire_at,
            "updated_at": now,
            "last_error": firing.error,
        }
        if firing.fired_for is not None:
            changes["last_fired_at"] = firing.fired_for
        if firing.rows:
            changes["last_task_uuid"] = firing.rows[-1].uuid
        with transaction.atomic(using=self.using):
            won = self._rows.filter(pk=schedule.pk, enabled=True, next_fire_at=firing.expected).update(
                **changes
            )
            if not won:
                return False
            if firing.rows:
                try:
                    with transaction.atomic(using=self.using):
                        inserts.insert(firing.rows, using=self.using)
                except IntegrityError:
                    # The unique (schedule, scheduled_for) refused a firing that exists (the
                    # schedule was moved back to times it had already fired at).
                    self._insert_not_made(schedule, firing.rows)
                else:
                    if firing.rows[-1].existing is not None:
                        # A unique task: the one still holding its key stands for this firing.
                        self._rows.filter(pk=schedule.pk).update(last_task_uuid=task_of(firing.rows[-1]))
        return True

    def _insert_not_made(self, schedule: Schedule, rows: Sequence[NewRow]) -> None:
        """Insert the firings of ``rows`` that have no task yet; the others stay as they are.

        Called after the compare-and-set, whose row lock keeps other firers of this
        schedule out until the transaction ends.
        """
        tasks = TaskRecord.objects.using(self.using).filter(schedule_id=schedule.pk)
        moments = [row.fields["scheduled_for"] for row in rows]
        made = set(tasks.filter(scheduled_for__in=moments).values_list("scheduled_for", flat=True))
        missing = [row for row in rows if row.fields["scheduled_for"] not in made]
        logger.warning(
            "schedule %r: %d firing(s) up to %s were already made; made the other %d",
            schedule.name,
            len(rows) - len(missing),
            moments[-1],
            len(missing),
        )
        inserts.insert(missing, using=self.using)
        latest = tasks.filter(scheduled_for=moments[-1]).values_list("uuid", flat=True).first()
        self._rows.filter(pk=schedule.pk).update(last_task_uuid=latest)

    def run_now(self, schedule: Schedule, row: NewRow) -> None:
        """Insert a firing outside the timetable ("run now"): its task has no ``scheduled_for``."""
        with transaction.atomic(using=self.using):
            inserts.insert([row], using=self.using)
            self._rows.filter(pk=schedule.pk).update(last_task_uuid=task_of(row), updated_at=timezone.now())

    def set_enabled(
        self, pks: Iterable[Any], enabled: bool, next_fire_at: Mapping[Any, datetime | None]
    ) -> int:
        """Pause or resume schedules; a resumed one fires next at ``next_fire_at[pk]``."""
        changed = 0
        now = timezone.now()
        with transaction.atomic(using=self.using):
            for pk in pks:
                fields: dict[str, Any] = {"enabled": enabled, "updated_at": now}
                if enabled:
                    fields["next_fire_at"] = next_fire_at.get(pk)
                changed += self._rows.filter(pk=pk, enabled=not enabled).update(**fields)
            self.notify_changed()
        return changed

    def sync_declared(
        self, declared: Mapping[str, dict[str, Any]], *, origins: Collection[str], next_fire_at: Any
    ) -> SyncCounts:
        """Make the declared schedules' rows match ``declared`` (name → fields).

        A new one is created; one whose fields differ is updated (and, if its timing
        changed, fires next at ``next_fire_at(fields)``); a row of ``origins`` no longer
        declared is disabled, not deleted, and ``removed_at`` says when it went. A
        schedule the admin paused stays paused. Rows of other origins are not touched,
        and a declared name taken by one of them is left alone (a system check names it).
        """
        counts = SyncCounts()
        now = timezone.now()
        with transaction.atomic(using=self.using):
            rows = {row.name: row for row in self._rows.select_for_update().filter(name__in=list(declared))}
            for name, fields in declared.items():
                row = rows.get(name)
                if row is None:
                    self._rows.create(
                        name=name, **fields, next_fire_at=next_fire_at(fields), created_at=now, updated_at=now
                    )
                    counts.created += 1
                elif row.origin in origins:
                    counts.updated += self._update_declared(row, fields, next_fire_at, now)
                else:
                    logger.warning(
                        "schedule %r is declared, but an admin schedule has that name: left alone", name
                    )
            gone = self._rows.filter(origin__in=list(origins), removed_at__isnull=True).exclude(
                name__in=list(declared)
            )
            counts.removed = gone.update(enabled=False, removed_at=now, updated_at=now)
            if counts.created or counts.updated or counts.removed:
                self.notify_changed()
        return counts

    def _update_declared(
        self, row: Schedule, fields: dict[str, Any], next_fire_at: Any, now: datetime
    ) -> int:
        changed = {key: value for key, value in fields.items() if getattr(row, key) != value}
        if row.removed_at is not None:  # declared again: back in service
            changed.update(removed_at=None, enabled=True)
        if not changed:
            return 0
        if {"cron", "interval", "timezone", "removed_at"} & set(changed):
            changed["next_fire_at"] = next_fire_at(fields)
        self._rows.filter(pk=row.pk).update(**changed, updated_at=now)
        return 1

    def notify_changed(self) -> None:
        """Tell workers (once the transaction commits) to read when the next firing is."""
        notifiers.get_notifier(self.using).send_on_commit(notifiers.SCHEDULES, "changed")

    def history(self, schedule_pk: Any, limit: int) -> Any:
        """The schedule's latest tasks, newest first (a queryset of ``TaskRecord``)."""
        return (
            TaskRecord.objects.using(self.using)
            .filter(schedule_id=schedule_pk)
            .order_by("-created_at")[:limit]
        )


@dataclass
class SyncCounts:
    """How many declared schedules a sync created, updated and disabled (gone from code)."""

    created: int = 0
    updated: int = 0
    removed: int = 0


def declared_origins() -> tuple[str, ...]:
    """The origins whose rows a worker keeps in step with code and settings."""
    return (ScheduleOrigin.CODE, ScheduleOrigin.SETTINGS)


def task_of(row: NewRow) -> Any:
    """The uuid of the task an inserted row stands for: its own, or the unique task holding its key."""
    return row.existing.pk if row.existing is not None else row.uuid
