"""The outcome writer: a refused outcome ends only its own task, and it never dies silently."""

from __future__ import annotations

import pytest

from qtasks_django.models import TaskRecord
from qtasks_django.worker import writer
from tests.tasks import add, sleeper
from tests.tasks_integration import it_unchecked

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("code_points", "shown"),
    [
        pytest.param([ord("x"), 0xD800, ord("y")], "'x\\ud800y'", id="surrogate"),
        # SQLite stores NUL: only PostgreSQL refuses it.
        pytest.param([ord("a"), 0, ord("b")], "'a\\x00b'", id="nul", marks=pytest.mark.postgres),
    ],
)
def test_a_result_the_database_refuses_ends_its_task_in_error_keeping_what_it_said(
    run_worker, code_points, shown
) -> None:
    # A custom executor let the value past the result check: the driver or PostgreSQL
    # refuses it. Its batch is written again one by one, and only this task fails.
    refused = it_unchecked.add_task(code_points)
    neighbours = [add.add_task(i, 1) for i in range(5)]

    worker = run_worker(concurrency=4)

    failed = TaskRecord.objects.get(pk=refused.uuid)
    assert failed.status == "error"
    assert "The task's outcome (success) could not be stored" in failed.traceback
    assert f"The returned value: {shown}" in failed.traceback
    assert [TaskRecord.objects.get(pk=t.uuid).returning for t in neighbours] == [1, 2, 3, 4, 5]
    assert worker.failure is None


def test_a_writer_that_dies_stops_its_worker_which_releases_every_task_it_holds(
    run_worker, monkeypatch
) -> None:
    def broken(run, outcome):  # a bug in the writer itself, not a refusal
        raise RuntimeError("a bug in the outcome writer")

    monkeypatch.setattr(writer, "is_plain", broken)
    first = [add.add_task(i, 1) for i in range(3)]
    long = sleeper.add_task(3)

    worker = run_worker(concurrency=4, sync_pool="thread", shutdown_timeout=1)

    assert worker.failure == "the worker's outcome writer thread died"
    assert worker.runner.writer is not None and not worker.runner.writer.alive
    rows = TaskRecord.objects.in_bulk([t.uuid for t in [*first, long]])
    # Nothing is left in ``process`` under a lease nobody renews: all back in the queue.
    assert {row.status for row in rows.values()} == {"new"}
    assert all(row.lease_token is None and row.worker_id == "" for row in rows.values())
