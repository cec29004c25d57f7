"""The flow-control checks of ``demo_smoke``: a unique task, a concurrency limit, a rate limit.

Everything is enqueued at once, beside the other demo tasks, and judged from the tasks'
rows once they have ended: their ``started_at`` and ``finished_at`` show whether a limit
held. Each check takes a second or two, all of them at the same time; the unique task
(a few seconds long) is cancelled once it has shown that it is one task, so that it does
not hold a worker slot the other checks need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from typing import Any

from example_project.demo import tasks
from qtasks_django import TaskStatus, app

TENANTS = (901, 902)
"""Two tenants, a concurrency key each: each tenant's syncs must run one at a time."""
SYNCS_PER_TENANT = 2
SYNC_SECONDS = 0.2
RATED_CALLS = 3
"""``call_partner`` allows two starts a second: the third must start a second after the first."""
RATE_COUNT, RATE_PERIOD = 2, timedelta(seconds=1)

Wait = Callable[[Any, float], Any]
"""``wait(task, timeout)``: the task once ended, or None."""


@dataclass(frozen=True)
class FlowRun:
    """The flow-control tasks of one smoke run, enqueued; :meth:`results` judges them."""

    first: Any
    again: Any
    syncs: dict[int, list[Any]]
    calls: list[Any]

    @classmethod
    def start(cls) -> FlowRun:
        """Enqueue a unique task twice, a few syncs per tenant and a burst of rated calls."""
        return cls(
            first=tasks.rebuild_report.add_task(TENANTS[0]),
            again=tasks.rebuild_report.add_task(TENANTS[0]),
            syncs={
                tenant: [tasks.sync_tenant.add_task(tenant, SYNC_SECONDS) for _ in range(SYNCS_PER_TENANT)]
                for tenant in TENANTS
            },
            calls=app.add_tasks([tasks.call_partner(n) for n in range(RATED_CALLS)]),
        )

    def results(self, wait: Wait, remaining: Callable[[], float]) -> list[tuple[str, str | None, str]]:
        """Wait for every task; return ``(check name, problem or None, what passed)`` per check."""
        return [
            (
                "unique",
                self.unique_problem(wait, remaining),
                "the second call returned the first's task, created=False",
            ),
            (
                "concurrency",
                self.concurrency_problem(wait, remaining),
                "each tenant's syncs ran one at a time",
            ),
            ("rate", self.rate_problem(wait, remaining), f"at most {RATE_COUNT} calls started in any second"),
        ]

    def unique_problem(self, wait: Wait, remaining: Callable[[], float]) -> str | None:
        if self.again.uuid != self.first.uuid or self.again.created:
            return f"the second call returned {self.again.uuid} (created={self.again.created}), not {self.first.uuid}"
        app.cancel(self.first.uuid, reason="smoke: unique")
        final = wait(self.first, remaining())
        if final is None or final.status not in (TaskStatus.CANCEL, TaskStatus.SUCCESS):
            return f"rebuild_report {self.first.uuid}: {final and final.status!r} after its cancel"
        return None

    def concurrency_problem(self, wait: Wait, remaining: Callable[[], float]) -> str | None:
        for tenant, syncs in self.syncs.items():
            problem, ended = _ended_problem(syncs, wait, remaining)
            if problem:
                return problem
            runs = sorted(ended, key=lambda task: task.started_at)
            for before, after in pairwise(runs):
                if after.started_at < before.finished_at:
                    return (
                        f"tenant {tenant}: {after.uuid} started at {after.started_at:%H:%M:%S.%f} "
                        f"while {before.uuid} ran (until {before.finished_at:%H:%M:%S.%f})"
                    )
        return None

    def rate_problem(self, wait: Wait, remaining: Callable[[], float]) -> str | None:
        problem, ended = _ended_problem(self.calls, wait, remaining)
        if problem:
            return problem
        starts = sorted(task.started_at for task in ended)
        for earlier, later in zip(starts, starts[RATE_COUNT:], strict=False):
            if later - earlier < RATE_PERIOD:
                return f"{RATE_COUNT + 1} calls started within {(later - earlier).total_seconds():.3f} s"
        return None


def _ended_problem(
    queued: list[Any], wait: Wait, remaining: Callable[[], float]
) -> tuple[str | None, list[Any]]:
    """Wait for each task; say what is wrong if one did not succeed, and return the ended ones."""
    ended = []
    for task in queued:
        final = wait(task, remaining())
        if final is None:
            return f"{task.task_name} {task.uuid}: no outcome in time (is a qtasks_worker running?)", ended
        if final.status != TaskStatus.SUCCESS:
            return f"{task.task_name} {task.uuid}: status {final.status!r}, expected 'success'", ended
        ended.append(final)
    return None, ended
