"""Flow control on the real database: unique tasks, the claim's gates, paused queues, explain."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from qtasks_django import app
from qtasks_django.models import PausedQueue, TaskRecord, WorkerRecord
from qtasks_django.queue.claims import Claims
from qtasks_django.status import TaskStatus
from tests.tasks_flow import (
    flow_by_account,
    flow_limited,
    flow_plain,
    flow_rated,
    flow_unique,
    flow_unique_waiting,
)

pytestmark = pytest.mark.django_db


def claim_all(worker: str = "w1", limit: int = 50) -> list[TaskRecord]:
    """One round of a worker's claim: gated tasks, then free ones."""
    claims = Claims()
    gated = claims.claim_gated(worker, None, limit).records
    return gated + claims.claim(worker, None, limit - len(gated))


def finish(records: list[TaskRecord]) -> None:
    TaskRecord.objects.filter(pk__in=[r.pk for r in records]).update(
        status=TaskStatus.SUCCESS, finished_at=timezone.now()
    )


class TestUnique:
    def test_same_arguments_return_the_waiting_task(self) -> None:
        first = flow_unique.add_task(7)
        second = flow_unique.add_task(tenant_id=7, full=False)  # the same call, passed otherwise

        assert first.created and not second.created
        assert second.uuid == first.uuid
        assert TaskRecord.objects.filter(task_name="flow_unique").count() == 1
        assert flow_unique.add_task(8).created

    def test_a_running_task_holds_its_key_unless_only_waiting_counts(self) -> None:
        active = flow_unique.add_task(1)
        waiting = flow_unique_waiting.add_task(1)
        claim_all()

        assert flow_unique.add_task(1).uuid == active.uuid
        again = flow_unique_waiting.add_task(1)
        assert again.created and again.uuid != waiting.uuid

    def test_a_finished_task_frees_its_key(self) -> None:
        first = flow_unique.add_task(3)
        finish(claim_all())

        assert flow_unique.add_task(3).uuid != first.uuid

    def test_call_key_with_unique_for_expires(self) -> None:
        first = flow_plain.add_task(unique_key="invoice-42", unique_for=3600)
        assert flow_plain.add_task(unique_key="invoice-42").uuid == first.uuid
        # The hold has run out: the next enqueue takes the key over.
        TaskRecord.objects.filter(pk=first.uuid).update(unique_until=timezone.now() - timedelta(seconds=1))

        second = flow_plain.add_task(unique_key="invoice-42")

        assert second.created and second.uuid != first.uuid
        assert TaskRecord.objects.get(pk=first.uuid).unique_key is None

    def test_keys_are_per_task(self) -> None:
        assert flow_plain.add_task(unique_key="k").created
        assert flow_limited.add_task(unique_key="k").created

    def test_bulk_enqueue_respects_keys(self) -> None:
        existing = flow_unique.add_task(1)

        tasks = app.add_tasks([flow_unique(1), flow_unique(2), flow_unique(2), flow_plain()])

        assert [t.created for t in tasks] == [False, True, False, True]
        assert tasks[0].uuid == existing.uuid and tasks[2].uuid == tasks[1].uuid
        assert TaskRecord.objects.filter(task_name="flow_unique").count() == 2

    def test_a_large_bulk_of_unique_calls_writes_each_key_once(self) -> None:
        from qtasks_django.queue.inserts import UNIQUE_CHUNK

        held = [flow_unique.add_task(n).uuid for n in range(5)]
        calls = [flow_unique(n) for n in range(UNIQUE_CHUNK + 10)] + [flow_unique(3)]

        tasks = app.add_tasks(calls)

        assert [t.uuid for t in tasks[:5]] == held and not any(t.created for t in tasks[:5])
        assert all(t.created for t in tasks[5:-1])
        assert tasks[-1].uuid == held[3] and not tasks[-1].created
        assert TaskRecord.objects.filter(task_name="flow_unique").count() == UNIQUE_CHUNK + 10

    def test_inside_the_callers_transaction_which_stays_usable(self) -> None:
        with transaction.atomic():
            first = flow_unique.add_task(5)
            again = flow_unique.add_task(5)
            assert again.uuid == first.uuid
            TaskRecord.objects.count()  # the transaction is still usable
        assert TaskRecord.objects.filter(pk=first.uuid).exists()

    @pytest.mark.parametrize("value", ["", "x" * 300, "nul\x00"])
    def test_bad_keys_are_refused(self, value: str) -> None:
        from qtasks_django import QTasksError

        with pytest.raises(QTasksError, match="unique_key"):
            flow_plain.add_task(unique_key=value)
        assert not TaskRecord.objects.exists()

    def test_unique_for_without_a_key_is_refused(self) -> None:
        from qtasks_django import QTasksError

        with pytest.raises(QTasksError, match="unique_for needs a unique_key"):
            flow_plain.add_task(unique_for=60)


@pytest.mark.django_db(transaction=True)
def test_concurrent_enqueues_of_one_key_make_one_task() -> None:
    """Eight threads, each its own connection, enqueue one key at once: one row, one answer."""
    barrier = threading.Barrier(8)
    uuids: list[object] = []

    def enqueue() -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                uuids.append(flow_unique.add_task(99).uuid)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=enqueue) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(uuids) == 8 and len(set(uuids)) == 1
    assert TaskRecord.objects.filter(task_name="flow_unique").count() == 1


class TestGates:
    def test_concurrency_limit_admits_only_the_limit(self) -> None:
        for _ in range(5):
            flow_limited.add_task()
        flow_plain.add_task()

        first = claim_all()

        assert sorted(r.task_name for r in first) == ["flow_limited", "flow_limited", "flow_plain"]
        assert claim_all("w2") == []  # the gate is closed for every worker
        finish([r for r in first if r.task_name == "flow_limited"][:1])
        assert [r.task_name for r in claim_all("w2")] == ["flow_limited"]

    def test_per_key_limit(self) -> None:
        for account in (1, 1, 2, 2, 3):
            flow_by_account.add_task(account)

        claimed = claim_all()

        assert sorted(r.args[0] for r in claimed) == [1, 2, 3]
        assert sorted(r.concurrency_key for r in claimed) == ["acct:1", "acct:2", "acct:3"]

    def test_a_closed_gate_does_not_hide_tasks_behind_it(self) -> None:
        from qtasks_django.queue import gates

        for _ in range(gates.CANDIDATES * 2):
            flow_by_account.add_task(1)
        late = flow_by_account.add_task(2)

        claimed = Claims().claim_gated("w1", None, 10).records

        assert sorted(r.args[0] for r in claimed) == [1, 2]
        assert late.uuid in {r.pk for r in claimed}

    def test_a_closed_rate_gate_does_not_hide_other_keys(self) -> None:
        from qtasks_django.queue import gates
        from tests.tasks_flow import flow_rated_by_partner

        for _ in range(gates.CANDIDATES * 2):
            flow_rated_by_partner.add_task("a")
        flow_rated_by_partner.add_task("b")

        first = Claims().claim_gated("w1", None, 10)

        assert sorted(r.rate_key for r in first.records) == ["partner:a", "partner:b"]
        assert first.reopens_at is not None and first.reopens_at > timezone.now() + timedelta(minutes=59)

    def test_rate_limit_counts_starts_in_the_window(self) -> None:
        for _ in range(8):
            flow_rated.add_task()

        gate = Claims().claim_gated("w1", None, 50)

        assert len(gate.records) == 5
        assert gate.blocked and gate.reopens_at is not None
        assert gate.reopens_at <= timezone.now() + timedelta(seconds=1)
        # Finishing does not free a rate gate: only time does.
        finish(gate.records)
        assert Claims().claim_gated("w2", None, 50).records == []
        TaskRecord.objects.filter(task_name="flow_rated").update(
            started_at=timezone.now() - timedelta(seconds=2)
        )
        assert len(Claims().claim_gated("w2", None, 50).records) == 3


class TestPausedQueues:
    def test_paused_queue_is_not_claimed_until_resumed(self) -> None:
        task = flow_plain.add_task()
        assert app.pause_queue("default", reason="deploy", by="ops")
        assert not app.pause_queue("default")
        assert [p.queue for p in app.paused_queues()] == ["default"]

        assert claim_all() == []
        assert "paused" in app.explain(task.uuid).codes

        assert app.resume_queue("default")
        assert not app.resume_queue("default")
        assert [r.pk for r in claim_all()] == [task.uuid]

    def test_gated_tasks_of_a_paused_queue_wait_too(self) -> None:
        flow_limited.add_task()
        app.pause_queue("default")
        assert claim_all() == []

    @pytest.mark.parametrize("name", ["", "q" * 101, "a\x00b", 5])
    def test_bad_queue_names_are_refused(self, name: object) -> None:
        from qtasks_django import QTasksError

        with pytest.raises(QTasksError):
            app.pause_queue(name)  # type: ignore[arg-type]
        assert not PausedQueue.objects.exists()


class TestExplain:
    def live_worker(self, queues: list[str] | None = None, knows: list[str] | None = None) -> WorkerRecord:
        from qtasks_django.models import RegisteredTask

        worker = WorkerRecord.objects.create(
            id="w-live", host="h", pid=1, queues=queues or ["*"], concurrency=1
        )
        for name in knows or ["flow_plain", "flow_limited", "flow_rated"]:
            RegisteredTask.objects.get_or_create(name=name, defaults={"func": "x"})[0].workers.add(worker)
        return worker

    def test_unknown_task(self) -> None:
        assert app.explain("00000000-0000-0000-0000-000000000000") is None
        assert app.explain("not a uuid") is None

    def test_ready_and_waiting_for_a_slot(self) -> None:
        self.live_worker()
        flow_plain.add_task()
        task = flow_plain.add_task()

        explanation = app.explain(task.uuid)

        assert explanation.codes == ["ready"] and not explanation.blocked
        assert "1 ready task" in str(explanation)

    def test_eta_and_retry_backoff(self) -> None:
        self.live_worker()
        later = flow_plain.add_task(countdown=600)
        assert app.explain(later.uuid).codes == ["eta"]
        TaskRecord.objects.filter(pk=later.uuid).update(retry_parent_uuid=later.uuid, attempt=2)
        assert app.explain(later.uuid).codes == ["retry_backoff"]

    def test_concurrency_names_the_running_tasks(self) -> None:
        self.live_worker()
        for _ in range(3):
            flow_limited.add_task()
        running = Claims().claim_gated("w-live", None, 10).records
        waiting = TaskRecord.objects.get(task_name="flow_limited", status=TaskStatus.NEW)

        explanation = app.explain(waiting.pk)

        assert explanation.codes == ["concurrency"]
        assert set(explanation.reasons[0].tasks) == {r.pk for r in running}

    def test_rate(self) -> None:
        self.live_worker()
        for _ in range(6):
            flow_rated.add_task()
        Claims().claim_gated("w-live", None, 10)
        waiting = TaskRecord.objects.get(task_name="flow_rated", status=TaskStatus.NEW)

        reason = app.explain(waiting.pk).reasons[0]

        assert reason.code == "rate" and reason.until is not None

    def test_no_worker_serves_the_queue_or_knows_the_task(self) -> None:
        task = flow_plain.add_task()
        assert app.explain(task.uuid).codes == ["no_worker"]
        self.live_worker(queues=["default"], knows=["flow_limited"])
        assert app.explain(task.uuid).codes == ["unknown_task"]

    def test_a_lease_held_by_a_silent_worker(self) -> None:
        worker = self.live_worker()
        task = flow_plain.add_task()
        claim_all("w-live")
        assert app.explain(task.uuid).codes == ["running"]
        WorkerRecord.objects.filter(pk=worker.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
        assert app.explain(task.uuid).codes == ["stale_lease"]

    def test_every_reason_that_holds_is_given(self) -> None:
        self.live_worker()
        for _ in range(3):
            flow_limited.add_task()
        Claims().claim_gated("w-live", None, 10)
        waiting = TaskRecord.objects.get(task_name="flow_limited", status=TaskStatus.NEW)
        app.pause_queue("default")

        assert app.explain(waiting.pk).codes == ["paused", "concurrency"]

    def test_ended_and_retried(self) -> None:
        task, retry = flow_plain.add_task(), flow_plain.add_task()
        TaskRecord.objects.filter(pk=task.uuid).update(status=TaskStatus.RETRY, retry_child_uuid=retry.uuid)
        TaskRecord.objects.filter(pk=retry.uuid).update(status=TaskStatus.SUCCESS)

        retried = app.explain(task.uuid)
        assert retried.codes == ["retried"] and retried.reasons[0].tasks == (retry.uuid,)
        assert app.explain(retry.uuid).codes == ["ended"]


@pytest.mark.django_db(transaction=True)
def test_racing_claimers_never_run_more_than_the_limit() -> None:
    """Six threads, each its own connection, claim and finish limited tasks as fast as they can.

    Half serve one queue and half the other, so they race for different rows of one key:
    only the key's lock (on SQLite, the database's write lock) keeps them from both
    finding room.
    """
    for number in range(40):
        app.add_task("flow_limited", 0.0)
        TaskRecord.objects.filter(status=TaskStatus.NEW, queue="default").update(queue=f"q{number % 2}")
    seen: list[int] = []  # running rows, sampled by every claimer after each claim

    def claimer(name: str, queue: str) -> None:
        try:
            for _ in range(300):
                records = Claims().claim_gated(name, [queue], 2).records
                seen.append(TaskRecord.objects.filter(status=TaskStatus.PROCESS).count())
                finish(records)
                if not TaskRecord.objects.filter(status=TaskStatus.NEW, queue=queue).exists():
                    return
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(f"w{i}", f"q{i % 2}")) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not TaskRecord.objects.filter(status=TaskStatus.NEW).exists()
    assert max(seen) == 2


def test_a_unique_schedule_firing_stands_for_the_task_holding_its_key() -> None:
    from qtasks_django.models import Schedule
    from qtasks_django.schedules.scheduler import Scheduler

    waiting = flow_unique.add_task(1)
    schedule = Schedule.objects.create(
        name="unique-one", task_name="flow_unique", interval=timedelta(hours=1), kwargs={"tenant_id": 1}
    )

    task = Scheduler(app).run_now(schedule)

    assert task.uuid == waiting.uuid and not task.created
    schedule.refresh_from_db()
    assert schedule.last_task_uuid == waiting.uuid
    assert TaskRecord.objects.filter(task_name="flow_unique").count() == 1
