"""Schedules as declared (``@task(schedule=...)``, ``QTASKS["SCHEDULES"]``, the admin), checked.

Every way of declaring a schedule ends in the same field values (a ``Schedule`` row's)
and the same check, ``check_schedule``: the timing parses, the task is registered, and
the arguments bind and encode exactly as an enqueue of them would.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from django.utils.module_loading import import_string

from ..conf import settings
from ..exceptions import InvalidSchedule, QTasksError
from ..models import MissedRuns, ScheduleOrigin
from ..models.schedules import SCHEDULE_NAME_MAX
from ..tasks.enqueue import Call, build_row
from ..timing import InvalidTiming, Timing

if TYPE_CHECKING:
    from ..tasks.app import QueueTasks

logger = logging.getLogger("qtasks_django.schedules")

#: The keys a ``QTASKS["SCHEDULES"]`` entry may have; ``task`` and one of cron/interval are required.
SETTINGS_KEYS = ("task", "cron", "interval", "args", "kwargs", "timezone", "queue", "priority", "missed_runs")


def default_zone() -> str:
    """The zone a schedule without one reads its cron expression in: ``settings.TIME_ZONE``."""
    return getattr(django_settings, "TIME_ZONE", None) or "UTC"


def timing_of(fields: Mapping[str, Any]) -> Timing:
    """The ``Timing`` of a schedule's field values (a row's or a declaration's)."""
    return Timing.parse(
        cron=fields.get("cron") or None,
        every=fields.get("interval"),
        zone=fields.get("timezone"),
        default_zone=default_zone(),
    )


def check_schedule(app: QueueTasks, fields: Mapping[str, Any], *, name: str = "") -> Timing:
    """Check a schedule's fields as a firing would use them; raise ``InvalidSchedule`` naming the mistake."""
    label = f"Schedule {name!r}: " if name else ""
    problem = _name_problem(name) if name else None
    if problem:
        raise InvalidSchedule(f"{label}{problem}")
    try:
        timing = timing_of(fields)
    except InvalidTiming as exc:
        raise InvalidSchedule(f"{label}{exc}") from None
    if fields.get("missed_runs", MissedRuns.ONCE) not in MissedRuns.values:
        raise InvalidSchedule(f"{label}missed_runs must be one of {', '.join(MissedRuns.values)}")
    args, kwargs = fields.get("args", []), fields.get("kwargs", {})
    if not isinstance(args, list | tuple):
        raise InvalidSchedule(f"{label}args must be a list, got {args!r}")
    if not isinstance(kwargs, dict):
        raise InvalidSchedule(f"{label}kwargs must be a dict, got {kwargs!r}")
    try:
        build_row(app, call_of(app, fields))
    except QTasksError as exc:
        raise InvalidSchedule(f"{label}{exc}") from None
    return timing


def call_of(app: QueueTasks, fields: Mapping[str, Any]) -> Call:
    """The enqueue a firing makes (the task's module is imported if this process has not yet)."""
    task_name = fields["task_name"]
    if isinstance(task_name, str) and task_name not in app.tasks and "." in task_name:
        _import_declaring_module(task_name)
    return Call(
        task_name,
        tuple(fields.get("args") or ()),
        dict(fields.get("kwargs") or {}),
        priority=fields.get("priority"),
        queue=fields.get("queue") or None,
    )


def declared(app: QueueTasks) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Return the schedules code and settings declare (name → fields), and the problems found.

    A declaration with a problem is left out (a worker keeps serving the rest); the
    system checks report the same problems before a worker starts.
    """
    found: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for schema in app.tasks.values():
        if schema.schedule is not None:
            every = schema.schedule if isinstance(schema.schedule, timedelta) else None
            cron = "" if every is not None else str(schema.schedule)
            found[schema.name] = _fields(schema.name, ScheduleOrigin.CODE, cron=cron, interval=every)
    raw = settings.SCHEDULES
    if not isinstance(raw, dict):
        return _checked(app, found, [*problems, "QTASKS['SCHEDULES'] must be a dict of name -> schedule"])
    for name, entry in raw.items():
        try:
            fields = from_settings(name, entry)
        except InvalidSchedule as exc:
            problems.append(str(exc))
            continue
        if name in found:
            problems.append(
                f"Schedule {name!r} is declared both by @task(schedule=...) and in QTASKS['SCHEDULES']"
            )
            continue
        found[name] = fields
    return _checked(app, found, problems)


def from_settings(name: Any, entry: Any) -> dict[str, Any]:
    """The fields of one ``QTASKS["SCHEDULES"]`` entry; raise ``InvalidSchedule`` on a malformed one."""
    label = f"QTASKS['SCHEDULES'][{name!r}]"
    problem = _name_problem(name) if isinstance(name, str) else "must be a string"
    if problem:
        raise InvalidSchedule(f"{label}: the name {problem}")
    if not isinstance(entry, dict):
        raise InvalidSchedule(f"{label} must be a dict with 'task' and 'cron' or 'interval'")
    unknown = sorted(set(entry) - set(SETTINGS_KEYS), key=str)
    if unknown:
        raise InvalidSchedule(f"{label}: unknown keys {unknown} (known: {', '.join(SETTINGS_KEYS)})")
    if not isinstance(entry.get("task"), str) or not entry["task"]:
        raise InvalidSchedule(f"{label}: 'task' must name a registered task")
    interval = entry.get("interval")
    if isinstance(interval, int | float) and not isinstance(interval, bool):
        interval = timedelta(seconds=interval) if abs(interval) < 1e12 else interval  # absurd: refused below
    return _fields(
        entry["task"],
        ScheduleOrigin.SETTINGS,
        cron=entry.get("cron") or "",
        interval=interval,
        args=_listed(entry.get("args")),
        kwargs={} if entry.get("kwargs") is None else entry["kwargs"],
        timezone=entry.get("timezone") or "",
        queue=entry.get("queue") or "",
        priority=entry.get("priority"),
        missed_runs=entry.get("missed_runs") or MissedRuns.ONCE,
    )


def _listed(args: Any) -> Any:
    # A tuple is as good as a list; anything else is left for check_schedule to name.
    if args is None:
        return []
    return list(args) if isinstance(args, list | tuple) else args


def _fields(task_name: str, origin: str, **given: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "task_name": task_name,
        "cron": "",
        "interval": None,
        "timezone": "",
        "args": [],
        "kwargs": {},
        "queue": "",
        "priority": None,
        "missed_runs": MissedRuns.ONCE,
        "origin": origin,
    }
    fields.update(given)
    return fields


def _checked(
    app: QueueTasks, found: dict[str, dict[str, Any]], problems: list[str]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    valid = {}
    for name, fields in found.items():
        try:
            timing = check_schedule(app, fields, name=name)
        except InvalidSchedule as exc:
            problems.append(str(exc))
            continue
        valid[name] = {
            **fields,
            "cron": timing.cron or "",
            "interval": timing.every,
            "timezone": timing.zone.key,
        }
    return valid, problems


def _name_problem(name: str) -> str | None:
    if not name.strip():
        return "must not be empty"
    if len(name) > SCHEDULE_NAME_MAX:
        return f"has {len(name)} characters, above the limit of {SCHEDULE_NAME_MAX}"
    if "\x00" in name:
        return "holds a NUL character"
    return None


def _import_declaring_module(task_name: str) -> None:
    # A Django task is registered under its dotted path when its module is imported;
    # a schedule may name one this process has not imported yet.
    try:
        import_string(task_name)
    except ImportError:
        pass  # unknown: build_row names it
    except Exception:
        # The module itself fails to import: say so; build_row then names the task unknown.
        logger.warning("importing %r for a schedule failed", task_name, exc_info=True)
