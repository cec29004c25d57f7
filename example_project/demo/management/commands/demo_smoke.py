"""``python manage.py demo_smoke``: run every demo task and check its outcome.

It needs a worker running in another process (``python manage.py qtasks_worker``).
First the ways of calling that the demo pages show: a transaction that rolls back,
waiting with ``timeout``, cancelling a queued task and a running one. Then every
demo task is enqueued at once, so they run concurrently, and each is waited for
(all within one ``--timeout``) and checked. With them go the flow-control checks
(``flow_smoke``): a unique task enqueued twice is one task, a tenant's syncs never
overlap, rated calls start no faster than their rate. One line is printed per check;
any mismatch or timeout fails the command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from example_project.demo import tasks
from example_project.demo.management.flow_smoke import FlowRun
from qtasks_django import TaskStatus, app
from qtasks_django.models import Schedule, TaskRecord
from qtasks_django.schedules.scheduler import Scheduler


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


def verify_doubler(final: Any, timeout: float) -> str | None:
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


def verify_fails(final: Any, timeout: float) -> str | None:
    last_line = (final.traceback or "").strip().splitlines()[-1:]
    return _mismatch("status", final.status, TaskStatus.ERROR) or _mismatch(
        "error", last_line, ["ValueError: smoke"]
    )


CHECKS = [
    Check("add", lambda: tasks.add.add_task(2, 3), expect_result(5)),
    Check("flaky", lambda: tasks.flaky.add_task(), verify_flaky),
    Check("fails", lambda: tasks.fails.add_task("smoke"), verify_fails),
    Check("parent", lambda: tasks.parent.add_task(21), verify_parent),
    Check("doubler", lambda: tasks.doubler.add_task(3), verify_doubler),
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
        # One deadline for all: the tasks run concurrently, and with no worker the
        # command should fail after `timeout`, not after one `timeout` per check.
        started = time.monotonic()
        deadline = started + timeout
        queued = [(check, check.enqueue()) for check in CHECKS]
        flow = FlowRun.start()
        passed = [
            self.check_rollback(),
            self.check_cancel_queued(),
            self.check_wait(_remaining(deadline)),
            self.check_cancel_running(_remaining(deadline)),
            self.check_schedules(_remaining(deadline)),
        ]
        for check, task in queued:
            final = _wait(task, _remaining(deadline))
            problem = (
                f"no outcome within {timeout}s (is a qtasks_worker running?)"
                if final is None
                else check.verify(final, _remaining(deadline))
            )
            done = f"{final.returning if final else None!r:<40} done by {time.monotonic() - started:.1f}s"
            passed.append(self.report(check.name, problem and f"{task.uuid}  {problem}", done))
        for name, problem, done in flow.results(_wait, lambda: _remaining(deadline)):
            passed.append(self.report(name, problem, f"{done}, by {time.monotonic() - started:.1f}s"))
        if not all(passed):
            raise CommandError(f"{passed.count(False)} of {len(passed)} demo checks failed")
        self.stdout.write(f"all {len(passed)} demo checks passed")

    def report(self, name: str, problem: str | None, done: str) -> bool:
        """Print one check's line; return whether it passed."""
        if problem:
            self.stdout.write(self.style.ERROR(f"FAIL {name:<11} {problem}"))
            return False
        self.stdout.write(self.style.SUCCESS(f"ok   {name:<11} {done}"))
        return True

    def check_rollback(self) -> bool:
        """Check that a task enqueued in a rolled-back transaction never exists."""
        try:
            with transaction.atomic():
                ghost = tasks.add.add_task(0, 0)
                raise RollbackError
        except RollbackError:
            pass
        exists = TaskRecord.objects.filter(uuid=ghost.uuid).exists() or app.get(ghost.uuid) is not None
        problem = f"{ghost.uuid} exists after a rollback" if exists else None
        return self.report("rollback", problem, "no task after the transaction rolled back")

    def check_wait(self, timeout: float) -> bool:
        """Check that ``add_task(..., timeout=)`` returns the finished task."""
        final = app.add_task("slow_hello", "wait", timeout=timeout)
        problem = (
            f"no result within {timeout}s"
            if final is None
            else _status_problem(final) or _mismatch("result", final.returning, "hello wait")
        )
        return self.report("wait", problem, "add_task(..., timeout=) returned the result")

    def check_cancel_queued(self) -> bool:
        """Check that a queued task cancelled before its start ends ``cancel`` and never runs."""
        task = tasks.add.add_task(1, 1, countdown=3600)  # not due for an hour: it stays queued
        was = app.cancel(task.uuid, reason="smoke: queued")
        final = app.get(task.uuid)
        problem = _mismatch("app.cancel()", was, "cancel") or _cancelled_problem(final, "smoke: queued")
        return self.report("cancel new", problem, "a queued task never started")

    def check_schedules(self, timeout: float) -> bool:
        """Check that the worker synced the demo's schedules, and that one runs now."""
        names = set(
            Schedule.objects.filter(enabled=True, next_fire_at__isnull=False).values_list("name", flat=True)
        )
        problem = _mismatch("schedules synced by the worker", sorted({"tick", "morning-summary"} - names), [])
        if problem is None:
            task = Scheduler(app).run_now(Schedule.objects.get(name="morning-summary"))
            final = _wait(task, timeout)
            problem = f"no result within {timeout}s" if final is None else _status_problem(final)
        return self.report("schedules", problem, "the worker synced the schedules; Run now ran one")

    def check_cancel_running(self, timeout: float) -> bool:
        """Check that a running ``long_job`` stops at its next step once cancelled."""
        task = tasks.long_job.add_task(steps=600, seconds_per_step=0.1)
        problem = _wait_until_running(task.uuid, timeout)
        if problem is None:
            was = app.cancel(task.uuid, reason="smoke: running")
            final = task.wait_result(timeout)
            problem = _mismatch("app.cancel()", was, "process") or _cancelled_problem(final, "smoke: running")
        if problem is None and len(final.progress) >= 600:
            problem = "long_job ran to its end"
        return self.report("cancel run", problem, "a running task stopped at its next step")


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.1)


def _wait(task: Any, timeout: float) -> Any:
    """Return the final ``Task`` of ``task`` (following retries), or None on timeout."""
    return task.wait_result(timeout)


def _status_problem(final: Any) -> str | None:
    if final.status == TaskStatus.SUCCESS:
        return None
    detail = (final.traceback or "").strip().splitlines()[-1:] or [final.cancel_reason or ""]
    return f"status {final.status!r}, expected 'success': {detail[0]}"


def _wait_until_running(uuid: Any, timeout: float) -> str | None:
    """Wait until the task has started and reported progress; say what is wrong if it does not."""
    for task in _polled(uuid, timeout):
        if task.status == TaskStatus.PROCESS and task.progress:
            return None
        if task.status != TaskStatus.NEW and task.status != TaskStatus.PROCESS:
            return f"status {task.status!r} before it was cancelled"
    return f"not running within {timeout}s (is a qtasks_worker running?)"


def _polled(uuid: Any, timeout: float) -> Iterator[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        yield app.get(uuid)
        time.sleep(0.05)


def _cancelled_problem(final: Any, reason: str) -> str | None:
    if final is None:
        return "no outcome"
    return _mismatch("status", final.status, TaskStatus.CANCEL) or _mismatch(
        "cancel reason", final.cancel_reason, reason
    )


def _mismatch(what: str, got: Any, expected: Any) -> str | None:
    return None if got == expected else f"{what} {got!r}, expected {expected!r}"


def _too_few(what: str, got: int, minimum: int) -> str | None:
    return None if got >= minimum else f"{got} {what}, expected at least {minimum}"
