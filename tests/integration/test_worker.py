"""The worker process's records: registered tasks, its own row, leases, rescue, concurrency."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
import warnings
import weakref
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from qtasks_django import app
from qtasks_django.models import RegisteredTask, TaskProgress, TaskRecord, WorkerRecord
from qtasks_django.worker import Worker
from tests.factories import RegisteredTaskFactory, TaskProgressFactory, TaskRecordFactory, WorkerRecordFactory
from tests.integration.helpers import WorkerLeftovers, wait_for_threads_to_end
from tests.tasks import add, sleeper

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition, timeout: float = 10.0, step: float = 0.05):
    """Poll ``condition`` until it returns something truthy; return that (or fail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(step)
    pytest.fail(f"condition not met within {timeout}s")


# -- registered tasks -------------------------------------------------------------------------------


def test_a_started_worker_persists_every_registered_task_and_links_itself(run_worker) -> None:
    worker = run_worker()

    rows = {row.name: row for row in RegisteredTask.objects.prefetch_related("workers")}
    assert set(app.tasks) <= set(rows)
    for name in app.tasks:
        assert worker.id in {w.id for w in rows[name].workers.all()}, name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "add",
            {"func": "tests.tasks.add", "priority": 0, "retry": None, "retry_on_exc": [], "awaiting": False},
        ),
        ("risky", {"func": "tests.tasks.risky", "retry": 5, "retry_on_exc": ["builtins.ZeroDivisionError"]}),
        ("risky_subclass", {"retry": 2, "retry_on_exc": ["builtins.ArithmeticError"]}),
        ("echo_sync", {"echo": True, "priority": 3, "max_time": 30.0, "extra": {"note": "hi"}}),
        ("echo_task", {"echo": True, "awaiting": True, "extra": {}}),
        ("async_shared", {"func": "tests.tasks.async_shared", "awaiting": True}),
        ("sync_but_awaiting", {"awaiting": True}),
        ("mytask", {"generating": "sync", "generate_handler": "tests.tasks.handler"}),
        ("agen", {"generating": "async", "generate_handler": "tests.tasks.async_handler"}),
        (
            "with_middlewares",
            {"middlewares_before": ["tests.tasks.Double"], "middlewares_after": ["tests.tasks.Wrap"]},
        ),
        ("decoded", {"decode": "builtins.str"}),
        ("too_slow", {"max_time": 0.5}),
        ("routed", {"func": "tests.tasks.routed"}),
        ("arouted", {"func": "tests.tasks.arouted", "awaiting": True}),
        ("it_emails", {"queue": "it_emails", "tags": ["mail"], "extra": {"queue": "it_emails"}}),
        ("it_kwargs", {"func": "tests.tasks_integration.it_kwargs"}),
    ],
)
def test_registered_task_metadata(run_worker, name, expected) -> None:
    run_worker()

    row = RegisteredTask.objects.get(name=name)
    assert {field: getattr(row, field) for field in expected} == expected


def test_stale_metadata_is_replaced_and_every_worker_is_linked(run_worker) -> None:
    old_worker = WorkerRecordFactory(id="old-worker")
    RegisteredTaskFactory(name="add", func="somewhere.else", retry=9, workers=[old_worker])

    first = run_worker()
    second = run_worker()

    row = RegisteredTask.objects.get(name="add")
    assert (row.func, row.retry) == ("tests.tasks.add", None)
    assert set(row.workers.values_list("id", flat=True)) == {"old-worker", first.id, second.id}


# -- the worker's own row --------------------------------------------------------------------------


def test_the_worker_records_itself_and_when_it_stopped(run_worker) -> None:
    before = timezone.now()

    worker = run_worker(concurrency=3, queues=["a", "b"])

    row = WorkerRecord.objects.get(pk=worker.id)
    assert (row.host, row.pid, row.concurrency, row.queues) == (
        socket.gethostname(),
        os.getpid(),
        3,
        ["a", "b"],
    )
    assert before <= row.started_at <= row.heartbeat_at
    assert row.stopped_at is not None and row.stopped_at >= row.heartbeat_at


def test_a_worker_serving_every_queue_records_a_star(run_worker) -> None:
    worker = run_worker()

    assert WorkerRecord.objects.get(pk=worker.id).queues == ["*"]


def test_a_running_worker_heartbeats_and_renews_its_leases(background_worker) -> None:
    task = sleeper.add_task(1.5)
    worker = background_worker()

    claimed = wait_until(lambda: TaskRecord.objects.filter(pk=task.uuid, status="process").first())
    first_lease = claimed.lease_expires_at
    first_beat = WorkerRecord.objects.get(pk=worker.id).heartbeat_at
    assert WorkerRecord.objects.get(pk=worker.id).stopped_at is None

    # HEARTBEAT_INTERVAL is 1 s in the test settings: the lease moves on while the task runs.
    renewed = wait_until(
        lambda: TaskRecord.objects.filter(
            pk=task.uuid, status="process", lease_expires_at__gt=first_lease
        ).first(),
        timeout=5,
    )
    assert renewed.lease_token == claimed.lease_token  # the same lease, extended
    assert WorkerRecord.objects.get(pk=worker.id).heartbeat_at > first_beat
    assert task.wait_result(10).status == "success"

    worker.stop()
    assert wait_until(lambda: WorkerRecord.objects.get(pk=worker.id).stopped_at)


# -- rescue of lost workers' tasks ----------------------------------------------------------------------


def test_a_worker_rescues_and_runs_a_task_whose_worker_was_lost(run_worker) -> None:
    lost = TaskRecordFactory(
        running=True, worker_id="dead-worker", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    worker = run_worker()

    record = TaskRecord.objects.get(pk=lost.pk)
    assert (record.status, record.returning, record.rescues, record.worker_id) == ("success", 3, 1, worker.id)


def test_a_rescued_generator_starts_its_progress_afresh(run_worker) -> None:
    lost = TaskRecordFactory(
        task_name="gen_list",
        args=[2],
        running=True,
        worker_id="dead-worker",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    TaskProgressFactory(task=lost, seq=1, value="from the lost run")

    run_worker()

    assert TaskRecord.objects.get(pk=lost.pk).returning == ["H(0)", "H(1)"]
    assert list(TaskProgress.objects.filter(task=lost).values_list("seq", "value")) == [
        (1, "H(0)"),
        (2, "H(1)"),
    ]


def test_a_task_with_a_live_lease_elsewhere_is_left_alone(run_worker) -> None:
    elsewhere = TaskRecordFactory(running=True, worker_id="busy-worker")

    worker = run_worker()

    assert worker.processed == 0
    assert TaskRecord.objects.get(pk=elsewhere.pk).status == "process"


# -- concurrency ----------------------------------------------------------------------------------------


def intervals(*tasks) -> list[tuple]:
    rows = [TaskRecord.objects.get(pk=t.uuid) for t in tasks]
    assert all(r.status == "success" for r in rows), [r.traceback for r in rows]
    return [(r.started_at, r.finished_at) for r in rows]


def overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_two_slots_run_two_sync_tasks_at_once(run_worker) -> None:
    first, second = sleeper.add_task(0.5), sleeper.add_task(0.5)

    run_worker(concurrency=2)

    assert overlap(*intervals(first, second))


def test_sync_and_async_tasks_share_the_slots(run_worker) -> None:
    sync = sleeper.add_task(0.5)
    async_ = app.add_task("async_sleeper", 0.5)

    run_worker(concurrency=2)

    assert overlap(*intervals(sync, async_))


def test_one_slot_runs_one_task_at_a_time(run_worker) -> None:
    first, second = sleeper.add_task(0.2), sleeper.add_task(0.2)

    run_worker(concurrency=1)

    assert not overlap(*intervals(first, second))


# -- package issues ----------------------------------------------------------------------------------------


def test_a_row_whose_kwargs_are_not_an_object_ends_in_error(run_worker) -> None:
    row = TaskRecordFactory(task_name="add", args=[], kwargs=[1, 2])
    after = add.add_task(1, 2, priority=1)

    run_worker(concurrency=1)

    assert TaskRecord.objects.get(pk=row.pk).status == "error"
    assert TaskRecord.objects.get(pk=after.uuid).returning == 3


def test_a_burst_run_leaves_no_thread_behind() -> None:
    leftovers = WorkerLeftovers()
    worker = Worker(app=app, burst=True, poll_interval=0.05)
    leftovers.workers.append(worker)
    try:
        worker.run()
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline and any(t.name == "qtasks-listen" for t in threading.enumerate()):
            time.sleep(0.05)

        assert not [t.name for t in threading.enumerate() if t.name.startswith("qtasks-")]
    finally:
        leftovers.clean_up()


def test_a_finished_worker_closes_its_event_loop() -> None:
    leftovers = WorkerLeftovers()
    worker = Worker(app=app, burst=True, poll_interval=0.05)
    try:
        worker.run()
        worker.stop()
        wait_for_threads_to_end()
        collected = weakref.ref(worker)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            del worker
            gc.collect()

        assert collected() is None  # the check below means something only if the worker is gone
        assert [str(w.message) for w in caught if "event loop" in str(w.message)] == []
    finally:
        leftovers.clean_up()


@pytest.mark.postgres
def test_a_finished_worker_leaves_no_database_session_open() -> None:
    leftovers = WorkerLeftovers()
    add.add_task(1, 2)
    worker = Worker(app=app, burst=True, poll_interval=0.05)
    leftovers.workers.append(worker)
    try:
        worker.run()
        worker.stop()
        wait_for_threads_to_end()

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
            assert cursor.fetchone()[0] == 0
    finally:
        leftovers.clean_up()


@pytest.mark.postgres
def test_a_result_the_database_refuses_ends_in_error_without_retrying_the_write(run_worker) -> None:
    from tests.tasks_integration import it_returns_nul

    refused = it_returns_nul.add_task()
    after = add.add_task(1, 1)
    started = time.monotonic()
    run_worker()
    assert time.monotonic() - started < 10, "a refused value is not an outage: no 30 s of write retries"
    failed = TaskRecord.objects.get(pk=refused.uuid)
    assert failed.status == "error"
    assert "\\u0000" in failed.traceback or "NUL" in failed.traceback or "0x00" in failed.traceback
    assert TaskRecord.objects.get(pk=after.uuid).status == "success"
