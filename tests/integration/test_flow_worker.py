"""Flow control with a real (in-process) worker: limits hold while it drains, pauses hold."""

from __future__ import annotations

from datetime import datetime

import pytest

from qtasks_django import app
from qtasks_django.models import TaskRecord
from qtasks_django.status import TaskStatus
from tests.tasks_flow import flow_by_account, flow_limited, flow_plain


def most_at_once(rows: list[TaskRecord]) -> int:
    """The most runs overlapping at one moment, from their start and finish times."""
    events: list[tuple[datetime, int]] = []
    for row in rows:
        assert row.started_at is not None and row.finished_at is not None
        events += [(row.started_at, 1), (row.finished_at, -1)]
    running = peak = 0
    for _, step in sorted(events):  # a finish sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.django_db(transaction=True)
def test_a_worker_drains_limited_tasks_within_the_limit_and_free_ones_beside_them(run_worker) -> None:
    for _ in range(8):
        flow_limited.add_task(0.05)
    for account in (1, 1, 1, 2, 2, 2):
        flow_by_account.add_task(account, 0.05)
    for _ in range(4):
        flow_plain.add_task()

    run_worker(concurrency=6)

    assert set(TaskRecord.objects.values_list("status", flat=True)) == {TaskStatus.SUCCESS}
    assert most_at_once(list(TaskRecord.objects.filter(task_name="flow_limited"))) <= 2
    for key in ("acct:1", "acct:2"):
        assert most_at_once(list(TaskRecord.objects.filter(concurrency_key=key))) == 1
    # The two accounts' gates are independent: their runs overlapped at some point.
    assert most_at_once(list(TaskRecord.objects.filter(task_name="flow_by_account"))) == 2


@pytest.mark.django_db(transaction=True)
def test_a_burst_worker_leaves_a_paused_queue_alone(run_worker) -> None:
    held = flow_plain.add_task()
    app.pause_queue("default")
    other = app.add_task("flow_plain", priority=0)
    TaskRecord.objects.filter(pk=other.uuid).update(queue="other")

    run_worker(queues=["default", "other"])

    assert TaskRecord.objects.get(pk=held.uuid).status == TaskStatus.NEW
    assert TaskRecord.objects.get(pk=other.uuid).status == TaskStatus.SUCCESS
    app.resume_queue("default")
    run_worker()
    assert TaskRecord.objects.get(pk=held.uuid).status == TaskStatus.SUCCESS
