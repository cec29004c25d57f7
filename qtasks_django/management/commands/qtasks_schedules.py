"""``python manage.py qtasks_schedules``: list the schedules (after syncing the declared ones), or run one now."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError

from qtasks_django.conf import Bounds
from qtasks_django.exceptions import QTasksError
from qtasks_django.management.options import database, integer_in
from qtasks_django.management.output import aligned, iso, one_line
from qtasks_django.models import Schedule
from qtasks_django.models.schedules import SCHEDULE_NAME_MAX
from qtasks_django.schedules.report import report, state
from qtasks_django.schedules.scheduler import Scheduler
from qtasks_django.tasks.app import get_app

#: How many next firings ``--next`` lists at most per schedule.
NEXT_COUNT = Bounds(1, 1000, integer=True)
#: Known names a "no such schedule" error lists before it says how many more there are.
KNOWN_SHOWN = 50
COLUMNS = ("NAME", "TASK", "STATE", "ORIGIN", "TIMING", "NEXT FIRING", "NEXT (UTC)", "LAST FIRED (UTC)")


def schedule_name(value: str) -> str:
    """An argparse ``type``: a name a schedule could have (and a query can hold)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("give a schedule name")
    if "\x00" in value:
        raise argparse.ArgumentTypeError(f"a schedule name holds no NUL character, got {value!r}")
    if len(value) > SCHEDULE_NAME_MAX:
        raise argparse.ArgumentTypeError(f"a schedule name has at most {SCHEDULE_NAME_MAX} characters")
    return value


class Command(BaseCommand):
    help = (
        "List the schedules (syncing those declared in code and QTASKS['SCHEDULES'] first) "
        "with their next firings, or enqueue one schedule's task now."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--next",
            type=integer_in(NEXT_COUNT),
            default=0,
            metavar="N",
            help="Also list the next N firings of each enabled schedule.",
        )
        parser.add_argument(
            "--run",
            type=schedule_name,
            default=None,
            metavar="NAME",
            help="Enqueue the task of the schedule NAME now (even a paused one) and print its uuid.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print JSON (ISO datetimes) instead of a table."
        )
        parser.add_argument(
            "--no-sync",
            action="store_true",
            help="Do not sync the declared schedules into the database first.",
        )
        parser.add_argument(
            "--database", type=database, default="default", help="Database alias (default 'default')."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scheduler = Scheduler(get_app(), using=options["database"])
        if not options["no_sync"]:
            counts = scheduler.sync()
            if not options["json"] and (counts.created or counts.updated or counts.removed):
                self.stdout.write(
                    f"Synced the declared schedules: {counts.created} created, {counts.updated} updated, "
                    f"{counts.removed} disabled (no longer declared)."
                )
        if options["run"] is not None:
            self._run(scheduler, options["run"], options["json"])
            return
        rows = Schedule.objects.using(options["database"]).order_by("name")
        reports = [report(scheduler, row, options["next"]) for row in rows]
        if options["json"]:
            self.stdout.write(json.dumps(reports, indent=2, default=iso))
        else:
            self.stdout.write(table(reports))

    def _run(self, scheduler: Scheduler, name: str, as_json: bool) -> None:
        schedule = scheduler.store.get(name)
        if schedule is None:
            raise CommandError(f"No schedule named {name!r}. {_known(scheduler)}")
        try:
            task = scheduler.run_now(schedule)
        except QTasksError as exc:  # the task is gone from this code, or its arguments no longer bind
            raise CommandError(f"Schedule {name!r} made no task: {exc}") from None
        shown = state(schedule)
        if as_json:
            done = {"schedule": name, "task": task.task_name, "task_uuid": str(task.uuid), "state": shown}
            self.stdout.write(json.dumps(done))
            return
        self.stdout.write(f"Enqueued task {task.uuid} ({task.task_name}) for schedule {name!r}.")
        if shown != "enabled":
            self.stdout.write(
                f"The schedule is {shown}: it ran because you asked, and it still does not fire on its own."
            )


def _known(scheduler: Scheduler) -> str:
    names = list(
        Schedule.objects.using(scheduler.store.using).order_by("name").values_list("name", flat=True)
    )
    if not names:
        return "There are no schedules."
    more = f" and {len(names) - KNOWN_SHOWN} more" if len(names) > KNOWN_SHOWN else ""
    return f"Known: {', '.join(map(repr, names[:KNOWN_SHOWN]))}{more}."


def table(reports: Sequence[dict[str, Any]]) -> str:
    """The schedules as aligned columns, then their next firings and last errors, if any."""
    if not reports:
        return "No schedules."
    rows = [
        [
            shown["name"],
            shown["task"],
            shown["state"],
            shown["origin"],
            shown["timing"],
            _when(shown["next_fire_at_local"], zone=True),
            _when(shown["next_fire_at"]),
            _when(shown["last_fired_at"]),
        ]
        for shown in reports
    ]
    lines = aligned(COLUMNS, rows)
    for shown in reports:
        if "upcoming" in shown:
            lines += ["", f"Next firings of {one_line(shown['name'])}:"]
            zone = ZoneInfo(shown["timezone"])
            lines += [
                f"  {_when(moment.astimezone(zone), zone=True)}  ({_when(moment)} UTC)"
                for moment in shown["upcoming"]
            ] or ["  none (paused)"]
    errors = [shown for shown in reports if shown["last_error"]]
    if errors:
        lines += ["", "Last errors:"]
        lines += [f"  {one_line(shown['name'])}: {one_line(shown['last_error'])}" for shown in errors]
    return "\n".join(lines)


def _when(moment: datetime | None, *, zone: bool = False) -> str:
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if zone else "%Y-%m-%d %H:%M:%S")
