"""Tasks the schedule tests fire (none declares a schedule: every worker of the suite would sync it)."""

from __future__ import annotations

from qtasks_django import shared_task


@shared_task
def scheduled_tick():
    return "tick"


@shared_task
def scheduled_report(days, *, label="report"):
    return f"{label}: {days} days"


@shared_task(awaiting=True)
async def scheduled_async_tick():
    return "async tick"
