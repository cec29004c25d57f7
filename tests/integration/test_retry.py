"""Retries run by a real (in-process) worker: the chain of attempts, its links and its end."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from qtasks_django import SyncResult, app
from qtasks_django.models import TaskRecord
from qtasks_django.queue.claims import Claims
from tests.integration.helpers import chain_of, qtasks_settings
from tests.tasks import cancel_never_retried, not_listed, risky, risky_subclass, succeeds_third

pytestmark = pytest.mark.django_db(transaction=True)


def test_retry_five_makes_six_linked_attempts_ending_in_error(run_worker) -> None:
    first = risky.add_task()

    run_worker()

    chain = chain_of(first.uuid)
    assert TaskRecord.objects.filter(task_name="risky").count() == len(chain) == 6
    assert [r.status for r in chain] == ["retry"] * 5 + ["error"]
    assert [r.attempt for r in chain] == [1, 2, 3, 4, 5, 6]
    assert [r.retry for r in chain] == [5, 4, 3, 2, 1, 0]
    assert chain[0].retry_parent_uuid is None
    for parent, child in itertools.pairwise(chain):
        assert parent.retry_child_uuid == child.uuid
        assert child.retry_parent_uuid == parent.uuid
        assert (child.args, child.kwargs, child.queue, child.priority) == (
            parent.args,
            parent.kwargs,
            parent.queue,
            parent.priority,
        )
        assert child.started_at >= parent.finished_at  # attempts run one after the other
    assert chain[-1].retry_child_uuid is None
    for record in chain:
        assert "ZeroDivisionError" in record.traceback
        assert record.finished_at is not None and record.lease_token is None


def test_retry_on_exc_matches_subclasses(run_worker) -> None:
    first = risky_subclass.add_task()  # retry_on_exc=[ArithmeticError], raises ZeroDivisionError

    run_worker()

    chain = chain_of(first.uuid)
    assert [r.status for r in chain] == ["retry", "retry", "error"]
    assert [r.retry for r in chain] == [2, 1, 0]


def test_an_exception_not_listed_is_not_retried(run_worker) -> None:
    first = not_listed.add_task()  # retry_on_exc=[KeyError], raises ZeroDivisionError

    run_worker()

    record = TaskRecord.objects.get(pk=first.uuid)
    assert (record.status, record.retry_child_uuid) == ("error", None)
    assert "ZeroDivisionError" in record.traceback
    assert TaskRecord.objects.count() == 1


def test_a_cancel_is_never_retried(run_worker) -> None:
    first = cancel_never_retried.add_task()

    run_worker()

    record = TaskRecord.objects.get(pk=first.uuid)
    assert (record.status, record.cancel_reason, record.retry_child_uuid) == ("cancel", "stop", None)
    assert TaskRecord.objects.count() == 1


def test_a_task_that_succeeds_on_its_third_attempt_ends_success(run_worker) -> None:
    first = succeeds_third.add_task()

    run_worker()

    chain = chain_of(first.uuid)
    assert [(r.status, r.attempt) for r in chain] == [("retry", 1), ("retry", 2), ("success", 3)]
    assert chain[-1].returning == "third time"
    assert all("RuntimeError: not yet" in r.traceback for r in chain[:2])


def test_waiting_on_the_first_uuid_returns_the_final_attempt(run_worker) -> None:
    first = risky.add_task()
    run_worker()

    final = SyncResult(first.uuid).result(10)

    assert final is not None
    assert (final.status, final.attempt, final.retry) == ("error", 6, 0)
    assert final.uuid == chain_of(first.uuid)[-1].uuid
    assert final.retry_parent_uuid is not None
    assert first.wait_result(10).uuid == final.uuid


def test_app_get_of_a_failed_attempt_shows_it_with_its_successor(run_worker) -> None:
    first = succeeds_third.add_task()
    run_worker()

    attempt = app.get(first.uuid)

    assert attempt.status == "retry"
    assert attempt.retry_child_uuid == chain_of(first.uuid)[1].uuid
    assert "not yet" in attempt.traceback


def test_backoff_delays_the_next_attempt(run_worker) -> None:
    with qtasks_settings(RETRY_BACKOFF=1, RETRY_JITTER=False):
        first = risky_subclass.add_task()
        # A burst worker stops once nothing is ready: the successor is not due yet.
        run_worker()

    failed, successor = chain_of(first.uuid)
    assert failed.status == "retry"
    assert successor.status == "new"
    delay = successor.eta - failed.finished_at
    assert timedelta(seconds=0.5) <= delay <= timedelta(seconds=1.5)
    assert Claims().claim("w", None, 10) == []  # not claimable before its eta
