"""Batched finishes: one statement writes many outcomes, each still fenced by its own lease."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from qtasks_django import app
from qtasks_django.models import TaskRecord
from qtasks_django.queue.claims import Claims
from qtasks_django.queue.finishes import Finishes
from qtasks_django.tasks.execution import Outcome
from qtasks_django.tasks.run import TaskRun
from qtasks_django.tasks.task import SyncTask
from qtasks_django.worker.outcomes import as_finish
from qtasks_django.worker.writer import OutcomeWriter
from tests.factories import TaskRecordFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the writer thread has its own connection

AWKWARD = 'tab\there, line\nbreak, back\\slash, "quotes", é, 🎉'


def claimed(count: int) -> list[TaskRun]:
    """Claim ``count`` new ``add`` tasks; return their runs, as a worker makes them."""
    TaskRecordFactory.create_batch(count, args=[1, 2])
    records = Claims().claim("w1", None, count)
    assert len(records) == count
    schema = app.tasks["add"]
    return [
        TaskRun(
            record=r,
            schema=schema,
            task=SyncTask(schema, owner=app),
            finishes=Finishes(),
            threads=None,
            components={},
        )
        for r in records
    ]


def test_one_batch_writes_each_outcome_as_given() -> None:
    runs = claimed(4)
    began = timezone.now() - timedelta(seconds=3)
    outcomes = [
        Outcome(status="success", returning={"text": AWKWARD, "n": [1, 2.5, None]}, started_at=began),
        Outcome(status="success", returning=None),
        Outcome(status="error", traceback="Traceback...\nValueError: " + AWKWARD),
        Outcome(status="cancel", cancel_reason="stopped by " + AWKWARD),
    ]

    written = Finishes().finish_many([as_finish(*pair) for pair in zip(runs, outcomes, strict=True)])

    assert written == {run.uuid for run in runs}
    rows = {r.uuid: r for r in TaskRecord.objects.filter(pk__in=written)}
    first, second, third, fourth = (rows[run.uuid] for run in runs)
    assert (first.status, first.returning, first.started_at) == (
        "success",
        {"text": AWKWARD, "n": [1, 2.5, None]},
        began,
    )
    # A result of None is SQL NULL; a run with no corrected start keeps its claim's.
    assert second.returning is None and second.started_at == runs[1].record.started_at
    assert (third.status, third.traceback) == ("error", "Traceback...\nValueError: " + AWKWARD)
    assert (fourth.status, fourth.cancel_reason) == ("cancel", "stopped by " + AWKWARD)
    for row in rows.values():
        assert row.finished_at is not None
        assert row.lease_token is None and row.lease_expires_at is None


def test_a_run_that_lost_its_lease_is_left_out_and_the_others_are_written() -> None:
    runs = claimed(3)
    # Its lease expired and another worker claimed it again: a new token.
    TaskRecord.objects.filter(pk=runs[1].uuid).update(lease_token=None, status="new")
    Claims().claim("w2", None, 1)

    written = Finishes().finish_many([as_finish(run, Outcome(status="success", returning=1)) for run in runs])

    assert written == {runs[0].uuid, runs[2].uuid}
    again = TaskRecord.objects.get(pk=runs[1].uuid)
    assert (again.status, again.worker_id, again.returning) == ("process", "w2", None)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL refuses NUL in text")
def test_a_value_the_database_refuses_fails_only_its_own_task() -> None:
    runs = claimed(3)
    writer = OutcomeWriter(Finishes())
    try:
        futures = [
            writer.submit(runs[0], Outcome(status="success", returning=1)),
            writer.submit(runs[1], Outcome(status="error", traceback="NUL \x00 here")),
            writer.submit(runs[2], Outcome(status="success", returning=3)),
        ]
        assert [future.result(timeout=10) for future in futures] == [True, True, True]
    finally:
        writer.close()

    rows = {r.uuid: r for r in TaskRecord.objects.filter(pk__in=[run.uuid for run in runs])}
    assert (rows[runs[0].uuid].status, rows[runs[0].uuid].returning) == ("success", 1)
    assert (rows[runs[2].uuid].status, rows[runs[2].uuid].returning) == ("success", 3)
    refused = rows[runs[1].uuid]
    # Written alone, the refusal itself became the task's error.
    assert refused.status == "error" and "NUL" in refused.traceback
