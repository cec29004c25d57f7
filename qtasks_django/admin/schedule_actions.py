"""Pause, resume and run now: the schedule actions of the list and of a schedule's page.

Each acts once however often a request is repeated: pausing a paused schedule changes
nothing, and "run now" names its task after a key fixed when the page was drawn, so the
same form submitted twice makes one task. Each reports what it did as messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.db import IntegrityError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from ..exceptions import QTasksError
from ..models import Schedule, TaskRecord
from ..queue.schedules import ScheduleStore
from ..schedules.declarations import timing_of
from ..schedules.scheduler import Scheduler
from ..tasks.app import get_app
from ..timing import InvalidTiming
from .common import task_link

#: The namespace of the task uuids "run now" derives from the page's key and each schedule.
RUN_NOW_NAMESPACE = uuid.UUID("6f1d3c1e-8a0b-4c6e-9a55-3f5f4b0c2d71")


def pause(request: HttpRequest, schedules: QuerySet[Schedule]) -> None:
    """Pause the enabled ones; the others are reported as already paused."""
    rows = list(schedules)
    changed = ScheduleStore().set_enabled([s.pk for s in rows], False, {})
    _report(request, changed, len(rows), "Paused {}.", "{} already paused.")


def resume(request: HttpRequest, schedules: QuerySet[Schedule]) -> None:
    """Resume the paused ones; each fires next at its next time after now, not at the missed ones."""
    scheduler = Scheduler(get_app())
    next_fire_at: dict[Any, Any] = {}
    refused = 0
    for schedule in schedules:
        if schedule.enabled:
            continue
        if schedule.removed_at is not None:
            refused += 1
            messages.warning(
                request,
                f"{schedule.name!r} is no longer declared in code or settings: declare it again, or delete it.",
            )
            continue
        try:
            next_fire_at[schedule.pk] = scheduler.first_firing(timing_of(vars(schedule)))
        except InvalidTiming as exc:
            refused += 1
            messages.error(request, f"{schedule.name!r} cannot be resumed: {exc}")
    changed = ScheduleStore().set_enabled(list(next_fire_at), True, next_fire_at)
    total = len(schedules)
    _report(request, changed, total - refused, "Resumed {}.", "{} already enabled.")


def run_now(request: HttpRequest, schedules: Iterable[Schedule], nonce: uuid.UUID | None) -> None:
    """Enqueue each schedule's task now, once per ``nonce`` (the page's key) and schedule."""
    scheduler = Scheduler(get_app())
    for schedule in schedules:
        task_uuid = uuid.uuid5(RUN_NOW_NAMESPACE, f"{nonce}:{schedule.pk}") if nonce else None
        made = task_uuid is not None and TaskRecord.objects.filter(pk=task_uuid).exists()
        if not made:
            try:
                task_uuid = scheduler.run_now(schedule, task_uuid=task_uuid).uuid
            except IntegrityError:  # the same form, submitted twice at once: the other request made it
                made = True
            except QTasksError as exc:  # the task or its signature changed since the schedule was saved
                messages.error(request, f"Run now of {schedule.name}: no task made: {exc}")
                continue
        text = "Run now of {}: already made as task {}." if made else "Run now of {}: task {} enqueued."
        level = messages.WARNING if made else messages.SUCCESS
        messages.add_message(request, level, format_html(text, schedule.name, task_link(task_uuid)))


def _report(request: HttpRequest, changed: int, total: int, done: str, already: str) -> None:
    if changed:
        messages.success(request, done.format(_count(changed)))
    if total - changed > 0:
        messages.info(request, already.format(_count(total - changed)))


def _count(n: int) -> str:
    return f"{n} schedule{'' if n == 1 else 's'}"
