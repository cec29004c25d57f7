"""Cancels against a real worker: queued tasks never start, running ones stop (politely, then by force)."""

from __future__ import annotations

import time
import uuid as uuid_lib
from collections import Counter

import pytest

from qtasks_django.conf import settings as qtasks_settings
from qtasks_django.models import TaskProgress, TaskRecord
from qtasks_django.tasks.app import get_app
from tests.tasks_faults import SIGNAL_JOURNAL

from .conftest import wait_for
from .faults import Fleet, busy_cpu, fleet_fixture, journal_fixture, wait_status  # noqa: F401 (fixtures)
from .ledger import Journal

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = 1.5  # seconds from cancel to the end of a task that cooperates


def _add(name: str, journal: Journal, key: str, *args: object) -> uuid_lib.UUID:
    return get_app().add_task(name, str(journal), key, *args).uuid


def _wait_started(journal: Journal, key: str) -> None:
    wait_for(lambda: journal.count("start")[key], timeout=20, what=f"task {key} to start")


def test_cancelled_queued_task_never_starts(fleet: Fleet, journal: Journal) -> None:
    app = get_app()
    queued = _add("fault_job", journal, "queued")
    other = _add("fault_job", journal, "other")

    assert app.cancel(queued, reason="changed my mind") == "cancel"
    worker = fleet.start("--burst", wait=False)
    assert worker.wait_exit(60) == 0, worker.describe()

    record = TaskRecord.objects.get(pk=queued)
    assert (record.status, record.cancel_reason, record.started_at, record.worker_id) == (
        "cancel",
        "changed my mind",
        None,
        "",
    )
    assert TaskRecord.objects.get(pk=other).status == "success"
    assert journal.count("start") == {"other": 1}
    assert app.cancel(queued) is None  # already ended
    assert app.cancel(other) is None
    assert app.cancel(uuid_lib.uuid4()) is None  # no such task


def test_running_tasks_stop_at_their_next_ctx_sleep(fleet: Fleet, journal: Journal) -> None:
    running = {
        kind: _add(kind, journal, kind, 60) for kind in ("fault_cooperative", "fault_async_cooperative")
    }
    after = _add("fault_job", journal, "after")
    worker = fleet.start("--concurrency", "2")
    for kind in running:
        _wait_started(journal, kind)

    cancelled_at = time.monotonic()
    assert {get_app().cancel(uuid, reason=f"user asked {kind}") for kind, uuid in running.items()} == {
        "process"
    }
    for kind, uuid in running.items():
        record = wait_status(uuid, ["cancel", "error", "success"], timeout=10, what=f"the cancel of {kind}")
        assert (record.status, record.cancel_reason) == ("cancel", f"user asked {kind}"), record.traceback
    stopped = time.monotonic() - cancelled_at

    assert stopped < PROMPT, f"took {stopped:.2f}s"
    assert not set(journal.count("done")) & set(running)  # the cancelled bodies never completed
    wait_status(after, ["success"], timeout=10, what="the next task in a freed slot")
    assert worker.alive()
    fleet.stop_all()


def test_running_generator_stops_at_its_next_progress_step(fleet: Fleet, journal: Journal) -> None:
    running = _add("fault_steps", journal, "gen", 500, 0.1)
    fleet.start("--concurrency", "1")
    wait_for(lambda: journal.count("step")["gen"] >= 3, timeout=20, what="three progress steps")

    cancelled_at = time.monotonic()
    assert get_app().cancel(running, reason="enough") == "process"
    record = wait_status(
        running, ["cancel", "error", "success"], timeout=10, what="the cancel to take effect"
    )

    assert (record.status, record.cancel_reason) == ("cancel", "enough"), record.traceback
    assert time.monotonic() - cancelled_at < PROMPT
    assert TaskProgress.objects.filter(task_id=running).count() < 3 + 15
    fleet.stop_all()


def test_running_tasks_that_ignore_the_cancel_are_stopped_by_force(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    # A sync body in one long time.sleep, and a coroutine that never calls ctx.sleep.
    running = {kind: _add(kind, journal, kind, 60) for kind in ("fault_stubborn", "fault_async_job")}
    after = _add("fault_job", journal, "after")
    worker = fleet.start("--concurrency", "2")
    for kind in running:
        _wait_started(journal, kind)

    cancelled_at = time.monotonic()
    for uuid in running.values():
        assert get_app().cancel(uuid, reason="stop now") == "process"
    grace = qtasks_settings.CANCEL_GRACE
    for kind, uuid in running.items():
        record = wait_status(
            uuid, ["cancel", "error", "success"], timeout=grace + 10, what=f"the cancel of {kind}"
        )
        assert (record.status, record.cancel_reason) == ("cancel", "stop now"), record.traceback
    stopped = time.monotonic() - cancelled_at

    assert stopped < grace + 3, f"took {stopped:.2f}s"
    wait_status(after, ["success"], timeout=10, what="the next task in a freed slot")
    assert journal.count("done") == {"after": 1}  # the cancelled bodies never completed
    assert busy_cpu(worker) < 0.3
    record_property("cancel_seconds", stopped)
    fleet.stop_all()  # and no task process outlives the worker


def test_worker_sends_task_signals(fleet: Fleet, journal: Journal, tmp_path) -> None:
    from qtasks_django import signals

    enqueued: list[tuple[str, object]] = []

    def on_enqueued(sender, uuid, **kwargs):
        enqueued.append((sender, uuid))

    signals.task_enqueued.connect(on_enqueued)
    try:
        ok = _add("fault_job", journal, "ok")
        failing = get_app().add_task("risky").uuid  # retry=5 on ZeroDivisionError: 6 attempts
    finally:
        signals.task_enqueued.disconnect(on_enqueued)
    assert enqueued == [("fault_job", ok), ("risky", failing)]

    sent = Journal(tmp_path / "signals.log")
    worker = fleet.start("--burst", env={SIGNAL_JOURNAL: str(sent)}, wait=False)
    assert worker.wait_exit(60) == 0, worker.describe()

    seen = Counter((event, key) for event, key, _pid in sent.events())
    assert seen == {
        ("task_started", "fault_job"): 1,
        ("task_finished", "fault_job"): 1,
        ("task_started", "risky"): 6,
        ("task_retried", "risky"): 5,
        ("task_finished", "risky"): 1,
    }
    finished = [line for line in sent.path.read_text().splitlines() if line.startswith("task_finished")]
    assert sorted(line.split()[-1] for line in finished) == ["error", "success"]
