"""Signals sent to a real ``qtasks_worker``: graceful drain, grace period, second signal, SIGKILL."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from qtasks_django import app
from qtasks_django.conf import settings as qtasks_settings
from qtasks_django.models import TaskRecord
from tests.tasks import add, e2e_long_first_run, sleeper

from .conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _status(task) -> str:
    return TaskRecord.objects.get(pk=task.uuid).status


def _wait_running(task, worker, timeout: float = 30.0) -> None:
    def running() -> bool:
        assert worker.alive(), worker.describe()
        return _status(task) == "process"

    wait_for(running, timeout=timeout, what=f"{task.task_name} to be claimed by {worker.id}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_claiming_lets_the_running_task_finish_and_exits_zero(start_worker, sig):
    worker = start_worker("--concurrency", "2", "--shutdown-timeout", "30")
    worker.wait_registered()
    running = sleeper.add_task(2)
    _wait_running(running, worker)

    worker.send(sig)
    worker.wait_log(f"received {sig.name}: stopping after running tasks")
    late = add.add_task(1, 1)  # a slot is free, but the worker no longer claims

    assert worker.wait_exit(30) == 0, worker.describe()
    finished = TaskRecord.objects.get(pk=running.uuid)
    assert (finished.status, finished.returning, finished.worker_id) == ("success", 2, worker.id)
    untouched = TaskRecord.objects.get(pk=late.uuid)
    assert (untouched.status, untouched.worker_id, untouched.started_at) == ("new", "", None)
    assert [(o["task"], o["status"]) for o in worker.outcomes()] == [("sleeper", "success")]


@pytest.mark.parametrize("task_name", ["sleeper", "async_sleeper"])
def test_shutdown_timeout_releases_the_running_task_back_to_new(start_worker, task_name):
    worker = start_worker("--shutdown-timeout", "1")
    worker.wait_registered()
    running = app.add_task(task_name, 30)
    _wait_running(running, worker)

    signalled = time.monotonic()
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(30) == 0, worker.describe()
    assert time.monotonic() - signalled < 10  # the 1 s grace period, not the 30 s task

    released = TaskRecord.objects.get(pk=running.uuid)
    assert (released.status, released.worker_id, released.lease_token) == ("new", "", None)
    assert (released.started_at, released.returning) == (None, None)
    assert "released 1 unfinished task(s) back to the queue" in worker.stderr()
    assert worker.outcomes() == []


def test_second_signal_releases_at_once_during_the_grace_period(start_worker):
    worker = start_worker("--shutdown-timeout", "120")
    worker.wait_registered()
    running = sleeper.add_task(30)
    _wait_running(running, worker)

    worker.send(signal.SIGTERM)
    worker.wait_log("received SIGTERM: stopping after running tasks")
    assert worker.alive()  # draining: the 30 s task is still running
    signalled = time.monotonic()
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(30) == 0, worker.describe()
    assert time.monotonic() - signalled < 10  # neither the 120 s grace period nor the 30 s task

    assert "received SIGTERM: releasing running tasks now" in worker.stderr()
    released = TaskRecord.objects.get(pk=running.uuid)
    assert (released.status, released.worker_id, released.lease_token) == ("new", "", None)


def test_sigkilled_worker_task_is_rescued_and_rerun_by_another_worker(start_worker, tmp_path):
    marker = tmp_path / "first-run-started"
    task = e2e_long_first_run.add_task(str(marker))
    first = start_worker()
    wait_for(marker.exists, timeout=30, what="the first run to start")

    first.send(signal.SIGKILL)
    assert first.wait_exit(10) == -signal.SIGKILL
    orphan = TaskRecord.objects.get(pk=task.uuid)
    assert (orphan.status, orphan.worker_id, orphan.rescues) == ("process", first.id, 0)

    # LEASE_TIMEOUT=5 s, RESCUE_INTERVAL=1 s (tests/settings.py): back in the queue within ~6 s.
    second = start_worker()
    wait_for(lambda: _status(task) == "success", timeout=30, what="the rescued task to be rerun")

    rerun = TaskRecord.objects.get(pk=task.uuid)
    # The first run's pid (a task process of the first worker) was left in the marker.
    assert rerun.returning == f"rerun after pid {marker.read_text()}"
    assert (rerun.rescues, rerun.attempt, rerun.worker_id) == (1, 1, second.id)
    assert "rescued tasks of lost workers: requeued=1 failed=0" in second.stderr()
    second.send(signal.SIGTERM)
    assert second.wait_exit(30) == 0, second.describe()


def test_task_that_keeps_killing_its_worker_ends_error_and_others_keep_flowing(start_worker):
    poison = app.add_task("e2e_kills_its_worker")  # async: it runs in the worker process itself
    other = add.add_task(20, 22)  # same priority, enqueued later: waits behind the poison pill

    runs = qtasks_settings.MAX_RESCUES + 1
    for run in range(runs):
        worker = start_worker("--concurrency", "1")
        assert worker.wait_exit(30) == -signal.SIGKILL, worker.describe()
        row = TaskRecord.objects.get(pk=poison.uuid)
        assert (row.status, row.worker_id, row.rescues) == ("process", worker.id, run)
        # Fast-forward past LEASE_TIMEOUT (the SIGKILL test above waits for it for real).
        TaskRecord.objects.filter(pk=poison.uuid).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        assert _status(other) == "new"

    last = start_worker("--burst", "--concurrency", "1")
    assert last.wait_exit(60) == 0, last.describe()

    dead = TaskRecord.objects.get(pk=poison.uuid)
    assert dead.status == "error"
    assert f"WorkerLost: the worker running this task was lost {runs} times" in dead.traceback
    assert (dead.rescues, dead.lease_token) == (qtasks_settings.MAX_RESCUES, None)
    assert "rescued tasks of lost workers: requeued=0 failed=1" in last.stderr()
    flowed = TaskRecord.objects.get(pk=other.uuid)
    assert (flowed.status, flowed.returning, flowed.worker_id) == ("success", 42, last.id)
