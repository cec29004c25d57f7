"""``qtasks_worker --processes N``: several worker processes under one command."""

from __future__ import annotations

import signal

import pytest

from qtasks_django.models import TaskRecord, WorkerRecord
from tests.e2e.conftest import wait_for
from tests.tasks_e2e import e2e_span

pytestmark = pytest.mark.django_db(transaction=True)


def test_processes_run_tasks_in_parallel_and_stop_together(start_worker) -> None:
    uuids = [e2e_span.add_task(1.0).uuid for _ in range(2)]
    worker = start_worker("--processes", "2", "--concurrency", "1")

    def finished() -> bool:
        return TaskRecord.objects.filter(pk__in=uuids, status="success").count() == 2

    wait_for(finished, timeout=30, what="both tasks to succeed")
    runs = [TaskRecord.objects.get(pk=u).returning for u in uuids]
    assert runs[0]["pid"] != runs[1]["pid"], "each task ran in its own process"
    assert max(r["start"] for r in runs) < min(r["end"] for r in runs), "the two runs overlapped"

    workers = WorkerRecord.objects.filter(id__startswith=worker.id)
    assert sorted(w.id for w in workers) == [f"{worker.id}-1", f"{worker.id}-2"]

    worker.send(signal.SIGTERM)
    assert worker.wait_exit(timeout=30) == 0
    wait_for(
        lambda: all(w.stopped_at for w in WorkerRecord.objects.filter(id__startswith=worker.id)),
        timeout=10,
        what="both worker processes to record their stop",
    )
