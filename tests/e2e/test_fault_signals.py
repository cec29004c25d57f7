"""Signals under load: SIGSTOP past the lease (fenced writes) and SIGTERM mid-run (drain or release)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from qtasks_django.models import TaskProgress, TaskRecord, WorkerRecord

from .conftest import WorkerProcess, wait_for
from .faults import Fleet, enqueue_jobs, fleet_fixture, journal_fixture, wait_status  # noqa: F401 (fixtures)
from .ledger import Journal, report, wait_ended

pytestmark = pytest.mark.django_db(transaction=True)


def _pause(worker: WorkerProcess) -> None:
    # The whole process group, as a frozen VM or a debugger would: task processes included.
    os.killpg(worker.pid, signal.SIGSTOP)


def _resume(worker: WorkerProcess) -> None:
    os.killpg(worker.pid, signal.SIGCONT)


def _rescue_window() -> float:
    return django_settings.QTASKS["LEASE_TIMEOUT"] + django_settings.QTASKS["RESCUE_INTERVAL"]


def test_worker_paused_past_its_lease_writes_nothing_when_it_wakes(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    from qtasks_django.tasks.app import get_app

    task = get_app().add_task("fault_job", str(journal), "paused", 2.0).uuid
    paused = fleet.start("--concurrency", "1")
    wait_for(lambda: journal.count("start")["paused"], timeout=20, what="the first run to start")
    _pause(paused)
    paused_at = time.monotonic()
    rescuer = fleet.start("--concurrency", "1")

    rerun = wait_status(task, ["success"], timeout=_rescue_window() + 20, what="the rescued task to be rerun")
    recovery = time.monotonic() - paused_at
    assert (rerun.worker_id, rerun.rescues, rerun.returning) == (rescuer.id, 1, "paused")
    frozen = WorkerRecord.objects.get(id=paused.id).heartbeat_at
    silent = (timezone.now() - frozen).total_seconds()
    assert silent > django_settings.QTASKS["LEASE_TIMEOUT"]  # the admin sees it fall silent

    _resume(paused)
    wait_for(
        lambda: WorkerRecord.objects.get(id=paused.id).heartbeat_at > frozen,
        timeout=10,
        what="the woken worker to heartbeat again",
    )
    paused.wait_log("lost its lease", timeout=20)
    after = TaskRecord.objects.get(pk=task)
    assert (after.status, after.worker_id, after.returning) == ("success", rescuer.id, "paused")
    assert (after.updated_at, after.finished_at) == (
        rerun.updated_at,
        rerun.finished_at,
    ), "the stale worker wrote"
    # Both bodies ran to the end (at least once), but only the lease holder's outcome counts.
    assert journal.count("done")["paused"] == 2
    assert recovery < _rescue_window() + 2 + 4

    # The woken worker is healthy: it keeps working.
    later = enqueue_jobs(8, journal, seconds=0.2)
    ledger = wait_ended(later, journal, timeout=30, check=fleet.check_alive)
    ledger.assert_clean()
    report(record_property, ledger, recovery=recovery)
    fleet.stop_all()


def test_worker_paused_mid_generator_writes_no_progress_into_the_rerun(
    fleet: Fleet, journal: Journal
) -> None:
    from qtasks_django.tasks.app import get_app

    steps = 8
    task = get_app().add_task("fault_steps", str(journal), "gen", steps, 0.4).uuid
    paused = fleet.start("--concurrency", "1")
    wait_for(lambda: journal.count("step")["gen"] >= 2, timeout=20, what="two progress steps")
    _pause(paused)
    rescuer = fleet.start("--concurrency", "1")

    def rerun_started() -> bool:
        return TaskRecord.objects.filter(pk=task, worker_id=rescuer.id, status="process").exists()

    wait_for(rerun_started, timeout=_rescue_window() + 20, what="the rescuer to claim the task")
    _resume(paused)  # it wakes in the middle of the rerun, with steps left to yield

    record = wait_status(task, ["success", "error"], timeout=30, what="the rerun to end")
    assert (record.status, record.worker_id, record.returning) == (
        "success",
        rescuer.id,
        "gen",
    ), record.traceback
    progress = list(TaskProgress.objects.filter(task_id=task).order_by("seq").values_list("seq", "value"))
    assert progress == [(seq + 1, seq) for seq in range(steps)]
    fleet.stop_all()


def test_sigterm_mid_load_lets_running_tasks_finish_and_loses_nothing(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    tasks = enqueue_jobs(250, journal, seconds=0.05)
    workers = [fleet.start("--concurrency", "4", "--shutdown-timeout", "20") for _ in range(2)]
    wait_for(
        lambda: TaskRecord.objects.filter(pk__in=tasks.values(), status="success").count() >= 40,
        timeout=60,
        what="the load to be under way",
    )

    signalled = time.monotonic()
    fleet.stop_all()  # one SIGTERM each; exit 0, nothing of theirs left behind
    drained = time.monotonic() - signalled

    rows = TaskRecord.objects.filter(pk__in=tasks.values())
    assert set(rows.values_list("status", flat=True)) == {"success", "new"}  # nothing left in process
    done = journal.count("done")
    for key, status in _keys_and_statuses(tasks):
        assert done[key] == (1 if status == "success" else 0), (key, status, done[key])
    assert "released" not in "".join(w.stderr() for w in workers)  # each running task finished in the grace

    finisher = fleet.start("--burst", "--concurrency", "4", wait=False)
    assert finisher.wait_exit(120) == 0, finisher.describe()
    ledger = wait_ended(tasks, journal, timeout=10)
    ledger.assert_clean()
    report(record_property, ledger, drain_seconds=drained)


def test_sigterm_past_the_grace_period_releases_running_tasks_without_a_second_completion(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    tasks = enqueue_jobs(4, journal, task="fault_stubborn", seconds=4)
    worker = fleet.start("--concurrency", "4", "--shutdown-timeout", "1")
    wait_for(lambda: len(journal.count("start")) == 4, timeout=20, what="four long tasks to start")

    signalled = time.monotonic()
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(20) == 0, worker.describe()
    assert time.monotonic() - signalled < 3.5, worker.describe()  # the 1 s grace period, not the 4 s tasks
    fleet.stop_all()  # no task process outlives the worker
    assert set(TaskRecord.objects.filter(pk__in=tasks.values()).values_list("status", flat=True)) == {"new"}
    assert "released 4 unfinished task(s) back to the queue" in worker.stderr()

    rerun = fleet.start("--burst", "--concurrency", "4", wait=False)
    assert rerun.wait_exit(60) == 0, rerun.describe()
    ledger = wait_ended(tasks, journal, timeout=10)
    ledger.assert_clean()  # the released first runs never completed: one completion each
    assert journal.count("start") == {key: 2 for key in tasks}
    report(record_property, ledger)


def _keys_and_statuses(tasks: dict[str, object]) -> list[tuple[str, str]]:
    status_of = dict(TaskRecord.objects.filter(pk__in=tasks.values()).values_list("pk", "status"))
    return [(key, status_of[uuid]) for key, uuid in tasks.items()]
