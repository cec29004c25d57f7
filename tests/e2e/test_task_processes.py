"""Task processes come as sync tasks need them, one per slot at most, and retire when idle.

A worker holds one task process while idle (some 45 MB each), forks more when sync
tasks wait for a busy one, so that blocking tasks still all run at once, and lets the
extra ones go after ``TASK_PROCESS_IDLE_TIMEOUT``.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from qtasks_django.models import TaskRecord
from tests.e2e.conftest import wait_for
from tests.tasks import too_slow_sync
from tests.tasks_e2e import e2e_span

pytestmark = pytest.mark.django_db(transaction=True)

IDLE_TIMEOUT = 1.0
SHORT_IDLE = {"QTASKS_TEST_QTASKS": json.dumps({"TASK_PROCESS_IDLE_TIMEOUT": IDLE_TIMEOUT})}


def task_processes(worker_pid: int) -> list[int]:
    """The worker's task processes: the children of its zygote (the worker's child)."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[0] != "Z":
                parents[int(name)] = int(stat[1])
    return [pid for pid, parent in parents.items() if parents.get(parent) == worker_pid]


def test_idle_worker_holds_one_task_process(start_worker) -> None:
    worker = start_worker("--concurrency", "4")
    worker.wait_registered()
    assert len(task_processes(worker.pid)) == 1, worker.describe()

    quick = [e2e_span.add_task(0).uuid for _ in range(50)]
    wait_for(
        lambda: TaskRecord.objects.filter(pk__in=quick, status="success").count() == len(quick),
        timeout=30,
        what="the quick tasks to succeed",
    )
    # Short tasks queued behind one another need no second process (at worst one
    # forked on a hiccup of a busy machine, gone after the idle timeout).
    assert len(task_processes(worker.pid)) <= 2, worker.describe()


def test_blocking_tasks_each_get_a_process_then_the_extra_ones_retire(start_worker) -> None:
    worker = start_worker("--concurrency", "4", env=SHORT_IDLE)
    worker.wait_registered()
    spans = [e2e_span.add_task(2).uuid for _ in range(4)]
    wait_for(
        lambda: TaskRecord.objects.filter(pk__in=spans, status="success").count() == 4,
        timeout=30,
        what="the four sleeping tasks to succeed",
    )
    runs = [TaskRecord.objects.get(pk=uuid).returning for uuid in spans]
    assert len({run["pid"] for run in runs}) == 4, "each ran in a task process of its own"
    assert max(run["start"] for run in runs) < min(run["end"] for run in runs), "all four ran at once"
    assert max(run["start"] for run in runs) - min(run["start"] for run in runs) < 1.0

    wait_for(
        lambda: len(task_processes(worker.pid)) == 1,
        timeout=IDLE_TIMEOUT + 10,
        what="the idle task processes to retire down to one",
    )
    after = e2e_span.add_task(0).uuid  # the one left still serves
    wait_for(
        lambda: TaskRecord.objects.filter(pk=after, status="success").exists(),
        timeout=10,
        what="a task after the others retired",
    )


def test_max_time_kills_a_task_that_waited_for_a_process(start_worker) -> None:
    worker = start_worker("--concurrency", "2")
    worker.wait_registered()
    span = e2e_span.add_task(3).uuid  # holds the one task process
    wait_for(
        lambda: TaskRecord.objects.filter(pk=span, status="process").exists(),
        timeout=10,
        what="the long task to start",
    )
    slow = too_slow_sync.add_task().uuid  # max_time=0.5, sleeps 2 s: needs a second process

    wait_for(
        lambda: TaskRecord.objects.filter(pk=slow, status="error").exists(),
        timeout=10,
        what="the slow task to end at its max_time",
    )
    record = TaskRecord.objects.get(pk=slow)
    assert "TaskTimeoutError" in record.traceback
    assert record.finished_at - record.started_at < timedelta(seconds=1.5)
    wait_for(
        lambda: TaskRecord.objects.filter(pk=span, status="success").exists(),
        timeout=10,
        what="the long task to succeed beside it",
    )
    assert len(task_processes(worker.pid)) <= 2, worker.describe()
