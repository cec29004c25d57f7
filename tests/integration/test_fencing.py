"""Leases: fenced finishes, renewal, release and rescue of lost workers (guarantees 2-4)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from qtasks_django import SyncResult
from qtasks_django.models import TaskLog, TaskRecord
from qtasks_django.queue.claims import Claims
from qtasks_django.queue.finishes import Finishes
from qtasks_django.queue.leases import Leases
from tests.factories import TaskRecordFactory
from tests.integration.helpers import qtasks_settings

LEASE_TIMEOUT = 5  # tests/settings.py

pytestmark = pytest.mark.django_db


def expire(record: TaskRecord) -> None:
    """Make the record's lease run out, as if its worker had stopped heartbeating."""
    TaskRecord.objects.filter(pk=record.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_finish_with_the_current_lease_writes_the_outcome() -> None:
    TaskRecordFactory()
    record = Claims().claim("w1", None, 1)[0]
    log = {"created_at": timezone.now(), "level": "INFO", "logger": "x", "message": "hello"}

    assert Finishes().finish(record, logs=[log], status="success", returning=3) is True

    stored = TaskRecord.objects.get(pk=record.pk)
    assert (stored.status, stored.returning) == ("success", 3)
    assert stored.lease_token is None and stored.lease_expires_at is None
    assert stored.finished_at is not None and stored.finished_at >= stored.started_at
    assert list(TaskLog.objects.filter(task=stored).values_list("message", flat=True)) == ["hello"]


def test_finish_twice_writes_once() -> None:
    TaskRecordFactory()
    record = Claims().claim("w1", None, 1)[0]

    assert Finishes().finish(record, status="success", returning=1) is True
    assert Finishes().finish(record, status="error", traceback="late") is False

    stored = TaskRecord.objects.get(pk=record.pk)
    assert (stored.status, stored.returning, stored.traceback) == ("success", 1, "")


def test_finish_after_release_writes_nothing() -> None:
    TaskRecordFactory()
    record = Claims().claim("w1", None, 1)[0]
    assert Leases().release("w1", [record.pk]) == 1

    log = {"created_at": timezone.now(), "level": "INFO", "logger": "x", "message": "late"}
    assert Finishes().finish(record, logs=[log], status="success", returning=3) is False

    stored = TaskRecord.objects.get(pk=record.pk)
    assert (stored.status, stored.returning, stored.finished_at) == ("new", None, None)
    assert not TaskLog.objects.exists()


def test_finish_after_rescue_writes_nothing_even_once_the_row_is_claimed_again() -> None:
    TaskRecordFactory()
    stale = Claims().claim("w1", None, 1)[0]
    expire(stale)
    assert Leases().rescue() == (1, 0)

    assert Finishes().finish(stale, status="success", returning="stale") is False

    fresh = Claims().claim("w2", None, 1)[0]  # rescued once: claimed again like any task
    assert fresh.pk == stale.pk and fresh.lease_token != stale.lease_token
    assert Finishes().finish(stale, status="success", returning="stale") is False
    assert TaskRecord.objects.get(pk=fresh.pk).status == "process"
    assert Finishes().finish(fresh, status="success", returning="fresh") is True
    assert TaskRecord.objects.get(pk=fresh.pk).returning == "fresh"


def test_retry_with_a_stale_lease_writes_no_successor() -> None:
    TaskRecordFactory(retry=2)
    stale = Claims().claim("w1", None, 1)[0]
    Leases().release("w1", [stale.pk])

    child = Finishes().retry(stale, delay=0, attempts_left=1, traceback="Traceback: boom", logs=[])

    assert child is None
    assert TaskRecord.objects.count() == 1
    assert TaskRecord.objects.get(pk=stale.pk).status == "new"


def test_renew_leases_extends_only_this_workers_running_rows() -> None:
    mine = TaskRecordFactory(
        running=True, worker_id="w1", lease_expires_at=timezone.now() + timedelta(seconds=1)
    )
    theirs = TaskRecordFactory(
        running=True, worker_id="w2", lease_expires_at=timezone.now() + timedelta(seconds=1)
    )
    done = TaskRecordFactory(succeeded=True, worker_id="w1")
    before = timezone.now()

    Leases().renew("w1", [mine.pk, theirs.pk, done.pk])

    renewed = TaskRecord.objects.get(pk=mine.pk).lease_expires_at
    assert renewed >= before + timedelta(seconds=LEASE_TIMEOUT - 0.5)
    assert TaskRecord.objects.get(pk=theirs.pk).lease_expires_at == theirs.lease_expires_at
    assert TaskRecord.objects.get(pk=done.pk).lease_expires_at is None


def test_renewed_leases_are_not_rescued() -> None:
    row = TaskRecordFactory(
        running=True, worker_id="w1", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    Leases().renew("w1", [row.pk])

    assert Leases().rescue() == (0, 0)
    assert TaskRecord.objects.get(pk=row.pk).status == "process"


def test_release_puts_this_workers_rows_back_untouched() -> None:
    TaskRecordFactory.create_batch(2, retry=3)
    mine = Claims().claim("w1", None, 2)
    theirs = TaskRecordFactory(running=True, worker_id="w2")

    released = Leases().release("w1", [r.pk for r in mine] + [theirs.pk])

    assert released == 2
    for record in mine:
        stored = TaskRecord.objects.get(pk=record.pk)
        assert (stored.status, stored.worker_id, stored.lease_token) == ("new", "", None)
        assert stored.lease_expires_at is None and stored.started_at is None
        assert (stored.attempt, stored.retry, stored.rescues) == (1, 3, 0)  # a release is not a failure
    assert TaskRecord.objects.get(pk=theirs.pk).status == "process"
    assert [r.pk for r in Claims().claim("w3", None, 10)] != []  # claimable again


def test_release_of_nothing() -> None:
    assert Leases().release("w1", []) == 0


def test_rescue_requeues_expired_leases_and_counts_the_rescue() -> None:
    TaskRecordFactory()
    record = Claims().claim("w1", None, 1)[0]
    live = TaskRecordFactory(running=True, worker_id="w2")
    expire(record)

    assert Leases().rescue() == (1, 0)

    stored = TaskRecord.objects.get(pk=record.pk)
    assert (stored.status, stored.rescues, stored.worker_id, stored.lease_token) == ("new", 1, "", None)
    assert stored.started_at is None
    assert TaskRecord.objects.get(pk=live.pk).status == "process"  # a live lease is left alone


def test_rescue_at_max_rescues_ends_the_task_in_error() -> None:
    poison = TaskRecordFactory(
        running=True, rescues=3, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    other = TaskRecordFactory(running=True, rescues=2, lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert Leases().rescue() == (1, 1)

    stored = TaskRecord.objects.get(pk=poison.pk)
    assert stored.status == "error"
    assert "WorkerLost" in stored.traceback
    assert stored.finished_at is not None and stored.lease_token is None
    assert TaskRecord.objects.get(pk=other.pk).status == "new"


def test_max_rescues_is_configurable() -> None:
    row = TaskRecordFactory(running=True, rescues=1, lease_expires_at=timezone.now() - timedelta(seconds=1))

    with qtasks_settings(MAX_RESCUES=1):
        assert Leases().rescue() == (0, 1)

    assert TaskRecord.objects.get(pk=row.pk).status == "error"


def test_a_poison_pill_cycle_ends_in_error_after_max_rescues_plus_one_runs() -> None:
    TaskRecordFactory()
    runs = 0
    # After its second run it is a suspect: only a claim for suspects (run alone) takes it.
    while (claimed := Claims().claim("w", None, 1, suspects=runs >= 2)) and runs < 10:
        runs += 1
        expire(claimed[0])  # the worker "dies" on every run
        Leases().rescue()

    stored = TaskRecord.objects.get()
    assert (stored.status, runs) == ("error", 4)  # MAX_RESCUES (3) + 1 runs, then no more
    assert "lost 4 times" in stored.traceback


@pytest.mark.django_db(transaction=True)
def test_a_waiter_is_woken_when_rescue_fails_a_poison_pill() -> None:
    row = TaskRecordFactory(running=True, rescues=3, lease_expires_at=timezone.now() + timedelta(seconds=60))
    results = []
    waiting = threading.Event()

    def wait() -> None:
        try:
            waiting.set()
            results.append(SyncResult(row.pk).result(20))
        finally:
            connections.close_all()

    thread = threading.Thread(target=wait)
    thread.start()
    waiting.wait(5)
    expire(row)
    assert Leases().rescue() == (0, 1)
    thread.join(30)

    assert not thread.is_alive()
    assert results[0].status == "error" and "WorkerLost" in results[0].traceback


def test_rescued_twice_tasks_are_claimed_only_alone_and_only_when_asked_for() -> None:
    suspect = TaskRecordFactory(rescues=2, priority=-5)  # first in run order
    innocent = [TaskRecordFactory(), TaskRecordFactory(rescues=1), TaskRecordFactory()]

    batch = Claims().claim("w", None, 10)
    assert {r.pk for r in batch} == {r.pk for r in innocent}  # the suspect is left out
    assert Claims().suspects_waiting(None) is True

    alone = Claims().claim("w", None, 10, suspects=True)
    assert [r.pk for r in alone] == [suspect.pk]  # one, whatever the limit
    assert Claims().suspects_waiting(None) is False


@pytest.mark.parametrize(
    ("max_rescues", "alone_from"),
    [(0, 1), (1, 1), (2, 2), (3, 2), (10, 2)],
)
def test_tasks_rescued_once_recover_side_by_side_unless_their_next_loss_is_their_last(
    max_rescues: int, alone_from: int
) -> None:
    # Rescued fewer than ``alone_from`` times: claimed with the others (a crash's victims
    # recover together). From then on: only alone, so a poison pill condemns itself only.
    rows = {rescues: TaskRecordFactory(rescues=rescues) for rescues in range(4)}
    with qtasks_settings(MAX_RESCUES=max_rescues):
        together = {r.pk for r in Claims().claim("w", None, 10)}
        alone = []
        while claimed := Claims().claim("w", None, 10, suspects=True):
            alone.append([r.pk for r in claimed])

    assert together == {rows[n].pk for n in range(alone_from)}
    assert alone == [[rows[n].pk] for n in range(alone_from, 4)]  # one per claim
