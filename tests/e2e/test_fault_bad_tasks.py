"""Tasks that misbehave end only themselves: BaseExceptions, ``os._exit``, hangs past ``max_time``."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest

from qtasks_django.models import TaskRecord
from tests.tasks_faults import BASE_EXCEPTIONS

from .conftest import wait_for
from .faults import (  # noqa: F401 (fixtures)
    Fleet,
    assert_no_leftovers,
    busy_cpu,
    fleet_fixture,
    journal_fixture,
    tagged_processes,
    wait_status,
)
from .ledger import Journal

pytestmark = pytest.mark.django_db(transaction=True)


def _add(name: str, journal: Journal, key: str, *args: object) -> str:
    from qtasks_django.tasks.app import get_app

    return get_app().add_task(name, str(journal), key, *args).uuid


@pytest.mark.parametrize("task_name", ["fault_raises", "fault_async_raises"], ids=["sync", "async"])
def test_every_base_exception_ends_only_its_task(fleet: Fleet, journal: Journal, task_name: str) -> None:
    raising = {kind: _add(task_name, journal, kind, kind) for kind in BASE_EXCEPTIONS}
    after = _add("fault_job", journal, "after")

    worker = fleet.start("--burst", "--concurrency", "1", wait=False)
    assert worker.wait_exit(60) == 0, worker.describe()

    for kind, uuid in raising.items():
        record = TaskRecord.objects.get(pk=uuid)
        assert record.status == "error", (kind, record.status, worker.describe())
        assert kind in record.traceback, (kind, record.traceback)
    assert TaskRecord.objects.get(pk=after).status == "success"
    assert journal.count("start") == {kind: 1 for kind in [*BASE_EXCEPTIONS, "after"]}
    assert len(worker.outcomes()) == len(BASE_EXCEPTIONS) + 1, worker.stderr()  # one log line each
    assert_no_leftovers(worker)


def test_task_ending_its_own_process_ends_that_task_only(fleet: Fleet, journal: Journal) -> None:
    exits = _add("fault_exits", journal, "exits", 3)
    killed = _add("fault_kills_itself", journal, "killed")
    after = _add("fault_job", journal, "after")

    worker = fleet.start("--burst", "--concurrency", "1", wait=False)
    assert worker.wait_exit(60) == 0, worker.describe()

    for uuid in (exits, killed):
        record = TaskRecord.objects.get(pk=uuid)
        assert (record.status, record.rescues) == ("error", 0), worker.describe()
        assert record.traceback, record
    assert TaskRecord.objects.get(pk=after).status == "success"
    assert journal.count("start") == {"exits": 1, "killed": 1, "after": 1}  # never run twice
    assert_no_leftovers(worker)


def test_hanging_sync_tasks_are_stopped_at_max_time_and_free_their_slot(
    fleet: Fleet, journal: Journal
) -> None:
    spin = _add("fault_spin", journal, "spin")  # while True: pass, max_time=1
    late = _add("fault_late", journal, "late", 3)  # time.sleep(3), max_time=1
    after = _add("fault_job", journal, "after")
    worker = fleet.start("--concurrency", "1")

    done = wait_status(after, ["success"], timeout=20, what="the task queued behind two hanging ones")
    spun, slept = TaskRecord.objects.get(pk=spin), TaskRecord.objects.get(pk=late)
    for record in (spun, slept):
        assert record.status == "error", worker.describe()
        assert "TaskTimeoutError: Time limit exceeded" in record.traceback, record.traceback
        assert record.returning is None
        assert record.finished_at - record.started_at < timedelta(seconds=2.5)
    # Each slot was free again about a second after max_time.
    assert slept.started_at - spun.started_at < timedelta(seconds=2.5)
    assert done.started_at - slept.started_at < timedelta(seconds=2.5)

    time.sleep(2.5)  # past the end of the 3 s sleep
    assert journal.count("done") == {"after": 1}, "a timed-out body ran on to its end"
    assert busy_cpu(worker) < 0.3, "the spinning body is still burning CPU"
    fleet.stop_all()


def test_async_task_spinning_on_the_loop_is_interrupted_past_max_time(fleet: Fleet, journal: Journal) -> None:
    spinning = _add("fault_async_spins", journal, "spins", 30)  # a pure-Python loop, max_time=1
    fleet.start("--concurrency", "2")
    wait_for(lambda: journal.count("start"), timeout=20, what="the spinning task to start")
    other = _add("fault_async_job", journal, "other")

    record = wait_status(spinning, ["error"], timeout=6, what="the watchdog to interrupt the spinning task")
    assert "TaskTimeoutError" in record.traceback or "LoopBlocked" in record.traceback
    wait_status(other, ["success"], timeout=6, what="the other async task once the loop is free")
    assert journal.count("done").get("spins", 0) == 0, "the interrupted body ran on to its end"
    fleet.stop_all()


@pytest.mark.xfail(
    strict=True,
    reason="documented limitation (docs/worker.md, max_time): a blocking C call such as time.sleep inside "
    "async def cannot be interrupted until it returns, and stalls the event loop meanwhile",
)
def test_async_task_blocking_the_loop_is_stopped_at_max_time(fleet: Fleet, journal: Journal) -> None:
    blocking = _add("fault_async_blocks_loop", journal, "blocks", 8)  # time.sleep(8) in async def, max_time=1
    fleet.start("--concurrency", "2")
    wait_for(lambda: journal.count("start"), timeout=20, what="the blocking task to start")
    other = _add("fault_async_job", journal, "other")

    wait_status(other, ["success"], timeout=3, what="an async task next to the blocked loop")
    record = wait_status(blocking, ["error"], timeout=3, what="the blocking task to end at max_time")
    assert "TaskTimeoutError" in record.traceback
    fleet.stop_all()


def test_task_process_dying_while_idle_costs_no_task(fleet: Fleet, journal: Journal) -> None:
    """A child killed between tasks (the OOM killer, an operator) is replaced; the next task runs."""
    worker = fleet.start("--concurrency", "1")
    first = _add("fault_job", journal, "first")
    wait_status(first, ["success"], timeout=30, what="the first task")

    tagged = set(tagged_processes(worker.id))  # the worker, its zygote, the zygote's child
    children = [pid for pid in tagged if _parent(pid) in tagged and _parent(_parent(pid)) in tagged]
    assert len(children) == 1, (tagged, children, worker.describe())
    os.kill(children[0], signal.SIGKILL)
    wait_for(lambda: children[0] not in tagged_processes(worker.id), timeout=5, what="the child gone")

    after = _add("fault_job", journal, "after")
    record = wait_status(after, ["success", "error"], timeout=30, what="the task after the kill")
    assert record.status == "success", (record.traceback, worker.describe())
    assert journal.count("start") == {"first": 1, "after": 1}
    fleet.check_alive(worker)


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
