"""DatabaseQueue.claim: run order, readiness, queues, limits, and locking between claimers."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from qtasks_django.models import TaskRecord
from qtasks_django.queue.claims import Claims
from tests.factories import TaskRecordFactory

LEASE_TIMEOUT = 5  # tests/settings.py


def claim_one_by_one(worker_id: str = "w1", **options) -> list[TaskRecord]:
    """Claim with limit=1 until nothing is left: the order the database hands rows out."""
    order = []
    while claimed := Claims().claim(worker_id, options.get("queues"), 1):
        order += claimed
    return order


@pytest.mark.django_db
class TestOrder:
    def test_lower_priority_number_is_claimed_first(self) -> None:
        for priority in (5, 0, 3, -1):
            TaskRecordFactory(priority=priority, args=[priority, 0])

        assert [r.priority for r in claim_one_by_one()] == [-1, 0, 3, 5]

    def test_fifo_within_a_priority(self) -> None:
        now = timezone.now() - timedelta(minutes=1)
        # Inserted out of order: created_at decides, not insertion order.
        for offset in (2, 0, 3, 1):
            TaskRecordFactory(created_at=now + timedelta(seconds=offset), args=[offset, 0])

        assert [r.args[0] for r in claim_one_by_one()] == [0, 1, 2, 3]

    def test_priority_beats_age(self) -> None:
        old = TaskRecordFactory(priority=1, created_at=timezone.now() - timedelta(hours=1))
        young = TaskRecordFactory(priority=0)

        assert [r.pk for r in claim_one_by_one()] == [young.pk, old.pk]

    def test_a_batch_comes_back_in_run_order(self) -> None:
        now = timezone.now() - timedelta(minutes=1)
        TaskRecordFactory(priority=2, created_at=now)
        TaskRecordFactory(priority=1, created_at=now + timedelta(seconds=2))
        TaskRecordFactory(priority=1, created_at=now + timedelta(seconds=1))

        claimed = Claims().claim("w1", None, 10)

        assert [(r.priority, r.created_at) for r in claimed] == sorted(
            (r.priority, r.created_at) for r in claimed
        )
        assert len(claimed) == 3


@pytest.mark.django_db
class TestReadiness:
    def test_a_future_eta_is_not_claimed(self) -> None:
        later = TaskRecordFactory(eta=timezone.now() + timedelta(hours=1))

        assert Claims().claim("w1", None, 10) == []
        assert TaskRecord.objects.get(pk=later.pk).status == "new"

    def test_a_past_eta_is_claimed(self) -> None:
        due = TaskRecordFactory(eta=timezone.now() - timedelta(seconds=1))

        assert [r.pk for r in Claims().claim("w1", None, 10)] == [due.pk]

    @pytest.mark.parametrize("status", ["process", "success", "error", "cancel", "retry"])
    def test_only_new_rows_are_claimed(self, status) -> None:
        TaskRecordFactory(status=status)

        assert Claims().claim("w1", None, 10) == []

    def test_queues_filter(self) -> None:
        a = TaskRecordFactory(queue="a")
        b = TaskRecordFactory(queue="b")
        default = TaskRecordFactory()

        assert [r.pk for r in Claims().claim("w1", ["a"], 10)] == [a.pk]
        assert {r.pk for r in Claims().claim("w1", ["b", "default"], 10)} == {b.pk, default.pk}

    def test_no_queue_filter_claims_every_queue(self) -> None:
        TaskRecordFactory(queue="a")
        TaskRecordFactory(queue="b")

        assert {r.queue for r in Claims().claim("w1", None, 10)} == {"a", "b"}

    def test_limit(self) -> None:
        TaskRecordFactory.create_batch(5)

        assert len(Claims().claim("w1", None, 2)) == 2
        assert len(Claims().claim("w1", None, 0)) == 0
        assert len(Claims().claim("w1", None, 10)) == 3
        assert TaskRecord.objects.filter(status="process").count() == 5


@pytest.mark.django_db
def test_claimed_rows_are_in_process_under_a_lease() -> None:
    rows = TaskRecordFactory.create_batch(2)
    before = timezone.now()

    claimed = Claims().claim("worker-a", None, 10)

    assert {r.pk for r in claimed} == {r.pk for r in rows}
    tokens = set()
    for record in claimed:
        stored = TaskRecord.objects.get(pk=record.pk)
        assert stored.status == "process"
        assert stored.worker_id == "worker-a"
        assert stored.lease_token is not None and stored.lease_token == record.lease_token
        assert stored.started_at is not None and stored.started_at >= before
        expected = stored.started_at + timedelta(seconds=LEASE_TIMEOUT)
        assert abs((stored.lease_expires_at - expected).total_seconds()) < 1
        tokens.add(stored.lease_token)
    assert len(tokens) == 1  # one claim, one lease


@pytest.mark.django_db
def test_each_claim_gets_a_fresh_lease_token() -> None:
    TaskRecordFactory.create_batch(2)

    first = Claims().claim("w1", None, 1)[0]
    second = Claims().claim("w1", None, 1)[0]

    assert first.lease_token != second.lease_token


# -- locking between claimers ----------------------------------------------------------


def second_connection():
    """A separate psycopg connection to the test database (not Django's)."""
    import psycopg

    params = dict(connection.get_connection_params())
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_claim_skips_a_row_locked_by_another_connection_without_waiting() -> None:
    locked = TaskRecordFactory(priority=0)
    free = TaskRecordFactory(priority=1)
    table = TaskRecord._meta.db_table

    other = second_connection()
    try:
        # Another claimer is in the middle of its transaction, holding the best row.
        other.execute(f"SELECT uuid FROM {table} WHERE uuid = %s FOR UPDATE", [locked.pk])
        with connection.cursor() as cursor:
            # Were claim() to wait for the lock, it would fail after this instead of hanging.
            cursor.execute("SET lock_timeout = '2s'")
        try:
            claimed = Claims().claim("w1", None, 10)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")

        assert [r.pk for r in claimed] == [free.pk]
        assert TaskRecord.objects.get(pk=locked.pk).status == "new"
        other.rollback()  # the other claimer gives up its lock: the row is claimable again
        assert [r.pk for r in Claims().claim("w1", None, 10)] == [locked.pk]
    finally:
        other.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_being_claimed_elsewhere_is_not_claimed_twice() -> None:
    row = TaskRecordFactory()
    table = TaskRecord._meta.db_table

    other = second_connection()
    try:
        # The other side runs claim's own statements and stops before COMMIT.
        other.execute(f"SELECT uuid FROM {table} WHERE uuid = %s FOR UPDATE SKIP LOCKED", [row.pk])
        other.execute(f"UPDATE {table} SET status = 'process', worker_id = 'other' WHERE uuid = %s", [row.pk])

        assert Claims().claim("w1", None, 10) == []

        other.commit()
        assert Claims().claim("w1", None, 10) == []
        assert TaskRecord.objects.get(pk=row.pk).worker_id == "other"
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_get_the_same_row() -> None:
    total = 120
    now = timezone.now()
    TaskRecord.objects.bulk_create(
        TaskRecord(uuid=uuid.uuid4(), task_name="add", args=[i, 0], created_at=now, updated_at=now, eta=now)
        for i in range(total)
    )
    claims: dict[str, list[uuid.UUID]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def claimer(worker_id: str) -> None:
        got = claims.setdefault(worker_id, [])
        try:
            start.wait()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (records := Claims().claim(worker_id, None, 3)):
                got += [r.pk for r in records]
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)

    assert not errors
    everything = [pk for got in claims.values() for pk in got]
    assert len(everything) == len(set(everything)) == total
    assert set(everything) == set(TaskRecord.objects.values_list("pk", flat=True))
    for worker_id, got in claims.items():  # each row is recorded as its claimer's
        assert TaskRecord.objects.filter(pk__in=got, status="process", worker_id=worker_id).count() == len(
            got
        )


def _session_setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claims_planner_settings_never_outlive_it() -> None:
    # Behind PgBouncer (transaction pooling) a session-level SET would stay on a server
    # connection that other clients then get: a claim's settings end with its transaction.
    TaskRecordFactory()
    Claims().claim("w1", None, 5)
    gated_candidates = Claims().claim_gated("w1", None, 5)

    assert gated_candidates.records == []
    assert _session_setting("enable_sort") == "on"
    assert _session_setting("jit") == "on"
    assert connection.connection.info.transaction_status.name == "IDLE"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_inside_the_callers_transaction_stays_in_it() -> None:
    from django.db import transaction

    TaskRecordFactory()
    with transaction.atomic():
        claimed = Claims().claim("w1", None, 5)
        assert _session_setting("enable_sort") == "on"  # reset within the caller's transaction
        assert connection.connection.info.transaction_status.name == "INTRANS"
        transaction.set_rollback(True)

    assert len(claimed) == 1
    assert TaskRecord.objects.get().status == "new"  # rolled back with the caller's transaction


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failed_claim_leaves_no_transaction_open() -> None:
    from django.db import DatabaseError

    TaskRecordFactory()
    with pytest.raises(DatabaseError):
        # A queue name the server refuses (NUL is not valid in PostgreSQL text).
        Claims().claim("w1", ["bad\x00queue"], 5)

    assert connection.connection.info.transaction_status.name == "IDLE"
    assert [r.status for r in Claims().claim("w1", None, 5)] == ["process"]


@pytest.mark.django_db
class TestLook:
    """``Claims.look``: what an idle worker reads in one statement after a short claim."""

    def test_nothing_waits(self) -> None:
        look = Claims().look(None)

        assert (look.suspects, look.limited, look.next_eta) == (False, False, None)

    def test_the_next_delayed_task_is_when_it_is_due(self) -> None:
        soon = timezone.now() + timedelta(minutes=5)
        TaskRecordFactory(eta=soon + timedelta(minutes=5))
        TaskRecordFactory(eta=soon)
        TaskRecordFactory(eta=soon - timedelta(minutes=1), queue="other")

        assert Claims().look(None).next_eta == soon - timedelta(minutes=1)
        assert Claims().look(["default"]).next_eta == soon  # an aware datetime on every database

    def test_a_paused_queues_delayed_task_is_not_waited_for(self) -> None:
        from qtasks_django.models import PausedQueue

        TaskRecordFactory(eta=timezone.now() + timedelta(minutes=1), queue="held")
        PausedQueue.objects.create(queue="held")

        assert Claims().look(None).next_eta is None

    def test_ready_limited_rows_are_seen(self) -> None:
        TaskRecordFactory(concurrency_key="acct:1", concurrency_limit=1)

        look = Claims().look(None)

        assert look.limited is True
        assert look.suspects is False
        assert Claims().look(["elsewhere"]).limited is False

    def test_a_rescued_suspect_is_seen(self) -> None:
        from qtasks_django.queue.claims import suspect_after

        TaskRecordFactory(rescues=suspect_after())

        assert Claims().look(None).suspects is True
        assert Claims().look(None).limited is False
