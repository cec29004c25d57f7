"""``python manage.py qtasks_queues``: list the queues, pause or resume one, or explain why a task waits."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qtasks_django.exceptions import QTasksError
from qtasks_django.limits import queue_name_problem, unstorable_text
from qtasks_django.management.options import database
from qtasks_django.management.output import aligned, iso, one_line
from qtasks_django.queue.explain import Explanation, explain
from qtasks_django.queue.overview import QueueState, queue_overview
from qtasks_django.queue.pauses import Pause, QueuePauses
from qtasks_django.serialization import parse_uuid

COLUMNS = ("QUEUE", "WAITING", "READY", "RUNNING", "PAUSED SINCE (UTC)", "PAUSED BY", "REASON")
#: A pause's reason is cut to this many characters in the table (``--json`` has all of it).
REASON_SHOWN = 60
WHO = "manage.py qtasks_queues"


class Command(BaseCommand):
    help = (
        "List the queues (those with waiting or running tasks, and the paused ones) with their counts, "
        "pause or resume a queue, or explain why a task is not running."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        verbs = parser.add_mutually_exclusive_group()
        verbs.add_argument(
            "--pause",
            metavar="QUEUE",
            help="Pause QUEUE: no worker claims its tasks until it is resumed (running tasks finish).",
        )
        verbs.add_argument("--resume", metavar="QUEUE", help="Resume QUEUE and wake the workers.")
        verbs.add_argument(
            "--explain", metavar="UUID", help="Say why the task UUID is not running, one reason a line."
        )
        parser.add_argument("--reason", default="", help="With --pause: why, shown with the pause.")
        parser.add_argument("--json", action="store_true", help="Print JSON (ISO datetimes) instead of text.")
        parser.add_argument(
            "--database", type=database, default="default", help="Database alias (default 'default')."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using, as_json = options["database"], options["json"]
        if options["reason"] and options["pause"] is None:
            raise CommandError("--reason goes with --pause QUEUE.")
        if options["explain"] is not None:
            shown = self._explain(options["explain"], using, as_json)
        elif options["pause"] is not None:
            shown = self._pause(options["pause"], options["reason"], using, as_json)
        elif options["resume"] is not None:
            shown = self._resume(options["resume"], using, as_json)
        else:
            states = queue_overview(using)
            shown = (
                json.dumps([listed(s) for s in states], indent=2, default=iso) if as_json else table(states)
            )
        self.stdout.write(shown)

    def _pause(self, queue: str, reason: str, using: str, as_json: bool) -> str:
        _check_queue(queue, "pause")
        problem = unstorable_text(reason)
        if problem:
            raise CommandError(f"Cannot pause queue {queue!r}: the reason {problem}.")
        pauses = QueuePauses(using)
        try:
            changed = pauses.pause(queue, reason=reason, by=_who())
        except QTasksError as exc:
            raise CommandError(f"Cannot pause queue {queue!r}: {exc}.") from None
        pause = pauses.is_paused(queue)
        if as_json:
            return json.dumps({"queue": queue, "changed": changed, **paused(pause)}, default=iso)
        if changed:
            return f"Paused queue {queue!r}: no worker claims its tasks until it is resumed; running tasks finish."
        kept = f" ({_pause_line(pause)})" if pause else ""
        return f"Queue {queue!r} was already paused{kept}; that pause is kept, its reason unchanged."

    def _resume(self, queue: str, using: str, as_json: bool) -> str:
        _check_queue(queue, "resume")
        pauses = QueuePauses(using)
        changed = pauses.resume(queue)
        if as_json:
            return json.dumps({"queue": queue, "changed": changed, "paused": False, "pause": None})
        if changed:
            return f"Resumed queue {queue!r}: workers claim its tasks again."
        others = [p.queue for p in pauses.paused()]
        known = f" Paused: {', '.join(map(repr, others))}." if others else " No queue is paused."
        return f"Queue {queue!r} was not paused; nothing changed.{known}"

    def _explain(self, given: str, using: str, as_json: bool) -> str:
        if parse_uuid(given) is None:
            raise CommandError(
                f"{given!r} is not a task uuid (such as 0f8c6a4e-8d0b-4c1e-9f43-2a7d6b1e5c90)."
            )
        explanation = explain(given, using=using)
        if explanation is None:
            raise CommandError(f"No task {parse_uuid(given)} in database {using!r}.")
        if as_json:
            return json.dumps(explained(explanation), indent=2, default=iso)
        lines = [f"Task {explanation.uuid} ({explanation.status}):"]
        return "\n".join(lines + [f"- {one_line(reason.message)}" for reason in explanation.reasons])


def _check_queue(queue: str, verb: str) -> None:
    problem = queue_name_problem(queue)
    if problem:
        raise CommandError(f"Cannot {verb} {queue!r}: {problem}.")


def _who() -> str:
    try:
        return f"{WHO} ({getpass.getuser()})"
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return WHO


def _pause_line(pause: Pause) -> str:
    who = f" by {pause.paused_by}" if pause.paused_by else ""
    why = f": {pause.reason}" if pause.reason else ""
    return one_line(f"since {pause.paused_at:%Y-%m-%d %H:%M:%S %Z}{who}{why}")


def table(states: list[QueueState]) -> str:
    """The queues as aligned columns."""
    if not states:
        return "No queues: no task is waiting or running, and no queue is paused."
    rows = [
        [
            state.queue,
            str(state.waiting),
            str(state.ready),
            str(state.running),
            f"{state.pause.paused_at:%Y-%m-%d %H:%M:%S}" if state.pause else "-",
            state.pause.paused_by if state.pause else "",
            _cut(state.pause.reason) if state.pause else "",
        ]
        for state in states
    ]
    return "\n".join(aligned(COLUMNS, rows))


def _cut(text: str) -> str:
    return text if len(text) <= REASON_SHOWN else text[: REASON_SHOWN - 3] + "..."


def listed(state: QueueState) -> dict[str, Any]:
    """One queue of ``--json``."""
    counts = {"waiting": state.waiting, "ready": state.ready, "running": state.running}
    return {"queue": state.queue, **counts, **paused(state.pause)}


def paused(pause: Pause | None) -> dict[str, Any]:
    """``paused`` and ``pause`` (``null``, or when, by whom and why) of a queue's JSON."""
    if pause is None:
        return {"paused": False, "pause": None}
    shown = {"paused_at": pause.paused_at, "paused_by": pause.paused_by, "reason": pause.reason}
    return {"paused": True, "pause": shown}


def explained(explanation: Explanation) -> dict[str, Any]:
    """``--explain --json``: the task's status and each reason with its code."""
    reasons = [
        {"code": r.code, "message": r.message, "tasks": [str(u) for u in r.tasks], "until": r.until}
        for r in explanation.reasons
    ]
    return {
        "uuid": str(explanation.uuid),
        "status": explanation.status,
        "blocked": explanation.blocked,
        "reasons": reasons,
    }
