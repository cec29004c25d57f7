"""Tasks the schedule tests fire (none declares a schedule: every worker of the suite would sync it)."""

from __future__ import annotations

from qtasks_django import shared_task

from .tasks_faults import journal

__all__ = ["scheduled_async_tick", "scheduled_journal", "scheduled_report", "scheduled_tick"]


@shared_task
def scheduled_tick():
    return "tick"


@shared_task
def scheduled_report(days, *, label="report"):
    return f"{label}: {days} days"


@shared_task(awaiting=True)
async def scheduled_async_tick():
    return "async tick"


@shared_task(echo=True)
def scheduled_journal(self, path):
    """Append ``done <task uuid> <pid>`` to the journal at ``path``: the e2e tests count each task's runs."""
    journal(path, "done", self.ctx.task_uuid)
    return str(self.ctx.task_uuid)
