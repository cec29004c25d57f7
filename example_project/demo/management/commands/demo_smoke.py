"""``python manage.py demo_smoke``: run every demo task and check its outcome.

It needs a worker running in another process (``python manage.py qtasks_worker``).
Every task is enqueued first, so they run concurrently; then each is waited for
(all within one ``--timeout``) and checked. One line is printed per check; any
mismatch or timeout fails the command.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from example_project.demo import tasks
from qtasks_django import TaskStatus, app
from qtasks_django.models import TaskRecord


class RollbackError(Exception):
    """Raised to roll back the transaction of the rollback check."""


@dataclass(frozen=True)
class Check:
    """A demo task to enqueue and how to judge its final ``Task``."""

    name: str
    enqueue: Callable[[], Any]
    verify: Callable[[Any, float], str | None]
    """Return what is wrong with the final task (None if nothing), given the timeout."""


def expect_result(expected: Any) -> Callable[[Any, float], str | None]:
    """Build a check that the task succeeded with ``expected`` as its result."""

    def verify(final: Any, timeout: float) -> str | None:
        return _status_problem(final) or _mismatch("result", final.returning, expected)

    return verify


def verify_flaky(final: Any, timeout: float) -> str | None:
    expected_attempt = tasks.FLAKY_FAILURES + 1
    return (
        _status_problem(final)
        or _mismatch("attempt", final.attempt, expected_attempt)
        or _mismatch("result", final.returning, f"succeeded on attempt {expected_attempt}")
    )


def verify_parent(final: Any, timeout: float) -> str | None:
    problem = _status_problem(final)
    if problem:
        return problem
    child = app.get(final.returning)
    if child is None:
        return f"child task {final.returning} not found"
    child = _wait(child, timeout)
    if child is None:
        return f"child task {final.returning} did not finish within {timeout}s"
    record = TaskRecord.objects.get(uuid=child.uuid)
    return (
        _status_problem(child)
        or _mismatch("child result", child.returning, 42)
        or _mismatch("child's parent", str(record.parent_uuid), str(final.uuid))
    )


def verify_countdown(final: Any, timeout: float) -> str | None:
    progress = list(
        TaskRecord.objects.get(uuid=final.uuid).progress_items.order_by("seq").values_list("value", flat=True)
    )
    return (
        _status_problem(final)
        or _mismatch("result", final.returning, [6, 4, 2])
        or _mismatch("progress items", progress, [6, 4, 2])
    )


def verify_log_steps(final: Any, timeout: float) -> str | None:
    lines = TaskRecord.objects.get(uuid=final.uuid).log_lines.count()
    return (
        _status_problem(final) or _mismatch("result", final.returning, 3) or _too_few("log lines", lines, 3)
    )


CHECKS = [
    Check("add", lambda: tasks.add.add_task(2, 3), expect_result(5)),
    Check("flaky", lambda: tasks.flaky.add_task(), verify_flaky),
    Check("parent", lambda: tasks.parent.add_task(21), verify_parent),
    Check("countdown", lambda: tasks.countdown.add_task(3), verify_countdown),
    # An AsyncTask's add_task is awaitable; sync code enqueues it by name.
    Check("slow_hello", lambda: app.add_task("slow_hello", "x"), expect_result("hello x")),
    Check("shout", lambda: tasks.shout.add_task("hello qtasks"), expect_result("HELLO QTASKS")),
    Check("log_steps", lambda: tasks.log_steps.add_task(3), verify_log_steps),
]


class Command(BaseCommand):
    help = "Enqueue every demo task, wait for each and check its outcome (needs a running qtasks_worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--timeout",
            type=float,
            default=60.0,
            help="Seconds to wait for all the tasks to end (default: 60).",
        )

    def handle(self, *args: Any, timeout: float, **options: Any) -> None:
        failures = 0 if self.check_rollback() else 1
        queued = [(check, check.enqueue()) for check in CHECKS]
        # One deadline for all: the tasks run concurrently, and with no worker
        # the command should fail after `timeout`, not after len(CHECKS) times it.
        started = time.monotonic()
        deadline = started + timeout
        for check, task in queued:
            remaining = max(deadline - time.monotonic(), 0.1)
            final = _wait(task, remaining)
            problem = (
                f"no outcome within {timeout}s (is a qtasks_worker running?)"
                if final is None
                else check.verify(final, max(deadline - time.monotonic(), 0.1))
            )
            elapsed = time.monotonic() - started
            if problem:
                failures += 1
                self.stdout.write(self.style.ERROR(f"FAIL {check.name:<11} {task.uuid}  {problem}"))
            else:
                shown = repr(final.returning)
                self.stdout.write(
                    self.style.SUCCESS(f"ok   {check.name:<11} {shown:<40} done by {elapsed:.1f}s")
                )
        if failures:
            raise CommandError(f"{failures} of {len(CHECKS) + 1} demo checks failed")
        self.stdout.write(f"all {len(CHECKS) + 1} demo checks passed")

    def check_rollback(self) -> bool:
        """Check that a task enqueued in a rolled-back transaction never exists."""

        try:
            with transaction.atomic():
                ghost = tasks.add.add_task(0, 0)
                raise RollbackError
        except RollbackError:
            pass
        if TaskRecord.objects.filter(uuid=ghost.uuid).exists() or app.get(ghost.uuid) is not None:
            self.stdout.write(self.style.ERROR(f"FAIL {'rollback':<11} {ghost.uuid} exists after a rollback"))
            return False
        self.stdout.write(
            self.style.SUCCESS(f"ok   {'rollback':<11} no task after the transaction rolled back")
        )
        return True


def _wait(task: Any, timeout: float) -> Any:
    """Return the final ``Task`` of ``task`` (following retries), or None on timeout."""
    return task.wait_result(timeout)


def _status_problem(final: Any) -> str | None:
    if final.status == TaskStatus.SUCCESS:
        return None
    detail = (final.traceback or "").strip().splitlines()[-1:] or [final.cancel_reason or ""]
    return f"status {final.status!r}, expected 'success': {detail[0]}"


def _mismatch(what: str, got: Any, expected: Any) -> str | None:
    return None if got == expected else f"{what} {got!r}, expected {expected!r}"


def _too_few(what: str, got: int, minimum: int) -> str | None:
    return None if got >= minimum else f"{got} {what}, expected at least {minimum}"
