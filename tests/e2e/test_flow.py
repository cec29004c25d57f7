"""Flow control with real ``qtasks_worker`` processes: limits, rates, paused queues, unique enqueues.

The tasks (``flow_journal_*`` in tests/tasks_flow.py) journal ``start`` and ``done`` with
their monotonic and wall times, so each test computes from the journal how many bodies ran
at once, whatever the database says. The rate test reads the rows' ``started_at``, which
the gate counts (the claim's time, then the run's: a few milliseconds later). Every test
runs on PostgreSQL and SQLite (where the gates take the database's write lock).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from qtasks_django import app, notifiers
from qtasks_django.models import TaskRecord
from qtasks_django.status import TaskStatus
from qtasks_django.worker.claiming import GATES_INTERVAL
from tests.tasks_flow import (
    PAUSABLE_QUEUE,
    flow_journal_by_group,
    flow_journal_limited,
    flow_journal_pausable,
    flow_journal_pausable_limited,
    flow_journal_plain,
    flow_journal_rated,
)

from .conftest import REPO_ROOT, wait_for
from .faults import Fleet, fleet_fixture, full_run, journal_fixture, wait_status  # noqa: F401
from .ledger import Journal, report, wait_ended

pytestmark = pytest.mark.django_db(transaction=True)

OPTIONS = ("--concurrency", "4")
#: What a worker logs when something failed (``outages``: a database error it retries after).
FAILURES = (" ERROR ", "Traceback", "database unavailable")


class Run(NamedTuple):
    """One body's run, as its journal lines tell it (monotonic times, and the wall time of its start)."""

    pid: int
    start: float
    end: float
    wall_start: float


def runs(journal: Journal) -> dict[str, Run]:
    """Key → its completed run (the ledger checks that none ran twice)."""
    started: dict[str, tuple[int, float, float]] = {}
    done: dict[str, Run] = {}
    for line in journal.path.read_text().splitlines():
        event, key, pid, monotonic, wall = line.split()
        if event == "start":
            started[key] = (int(pid), float(monotonic), float(wall))
        elif event == "done":
            pid_, start, wall_start = started[key]
            done[key] = Run(pid_, start, float(monotonic), wall_start)
    return done


def started_keys(journal: Journal) -> set[str]:
    return {line.split()[1] for line in journal.path.read_text().splitlines() if line.startswith("start ")}


def most_at_once(runs: Iterable[Run]) -> int:
    """The most runs in progress at any moment (an end and a start at the same instant do not overlap)."""
    runs = list(runs)
    steps = sorted([(r.start, 1) for r in runs] + [(r.end, -1) for r in runs])
    peak = current = 0
    for _moment, step in steps:
        current += step
        peak = max(peak, current)
    return peak


def enqueue(task: Any, journal: Journal, keys: Iterable[str], **kwargs: Any) -> dict[str, Any]:
    """Enqueue ``task(journal, key, **kwargs)`` for each key in one statement; return key → uuid."""
    keys = list(keys)
    created = app.add_tasks([task(str(journal), key, **kwargs) for key in keys])
    return {key: row.uuid for key, row in zip(keys, created, strict=True)}


def start_workers(fleet: Fleet, count: int, *options: str) -> None:
    for worker in [fleet.start(*options, wait=False) for _ in range(count)]:
        worker.wait_registered()


def stop_workers(fleet: Fleet) -> None:
    """Stop every worker (exit 0, nothing left behind); none may have logged a failure on the way.

    A claim that failed (on SQLite: "database is locked" past the timeout) is logged and
    retried: the ledger alone would not show it.
    """
    fleet.stop_all()
    failures = {
        worker.id: [line for line in worker.stderr().splitlines() if any(m in line for m in FAILURES)]
        for worker in fleet.workers
    }
    assert not any(failures.values()), failures


def test_a_concurrency_limit_holds_across_three_workers_and_starves_no_other_task(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    start_workers(fleet, 3, *OPTIONS)  # 12 slots for a limit of 2
    count = 120 if full_run() else 40
    limited = enqueue(flow_journal_limited, journal, (f"limited-{n}" for n in range(count)), seconds=0.15)
    plain = enqueue(flow_journal_plain, journal, (f"plain-{n}" for n in range(20)), seconds=0.05)

    ledger = wait_ended({**limited, **plain}, journal, timeout=30 + count, check=fleet.check_alive)
    stop_workers(fleet)
    ledger.assert_clean()
    done = runs(journal)
    limited_runs = [done[key] for key in limited]
    assert most_at_once(limited_runs) == 2
    # The free tasks enqueued behind the backlog took the free slots: all ended long
    # before the backlog's last task started.
    last_plain = max(done[key].end for key in plain)
    last_limited = max(run.start for run in limited_runs)
    assert last_plain < last_limited
    workers = TaskRecord.objects.filter(pk__in=limited.values()).values_list("worker_id", flat=True)
    report(
        record_property,
        ledger,
        workers_running_limited=len(set(workers)),
        plain_done_before_backlog_end=last_limited - last_plain,
        drain=max(r.end for r in limited_runs) - min(r.start for r in limited_runs),
    )


def test_a_per_key_limit_runs_one_task_per_key_at_a_time_and_the_keys_side_by_side(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    per_key, seconds = (24 if full_run() else 8), 0.15
    # All of A's backlog first: it must not hide B's tasks from the gates.
    groups = {
        group: enqueue(
            flow_journal_by_group,
            journal,
            (f"{group}-{n}" for n in range(per_key)),
            group=group,
            seconds=seconds,
        )
        for group in ("A", "B")
    }
    # The workers poll every 10 s, and nothing wakes them when a task of a key ends:
    # their looks at a closed gate (every GATES_INTERVAL) must start the key's next task.
    start_workers(fleet, 2, *OPTIONS, "--poll-interval", "10")

    tasks = {**groups["A"], **groups["B"]}
    bound = per_key * (seconds + GATES_INTERVAL) + 5
    ledger = wait_ended(tasks, journal, timeout=bound, check=fleet.check_alive)
    stop_workers(fleet)
    ledger.assert_clean()
    done = runs(journal)
    assert most_at_once(done[key] for key in groups["A"]) == 1
    assert most_at_once(done[key] for key in groups["B"]) == 1
    assert most_at_once(done[key] for key in tasks) == 2  # A and B did run side by side
    drain = max(r.end for r in done.values()) - min(r.start for r in done.values())
    report(record_property, ledger, drain=drain)


def test_a_rate_limit_holds_across_two_workers(fleet: Fleet, journal: Journal, record_property) -> None:
    start_workers(fleet, 2, *OPTIONS)
    count = 60 if full_run() else 20  # "5/s": at least (count / 5 - 1) seconds
    rated = enqueue(flow_journal_rated, journal, (f"rated-{n}" for n in range(count)))

    ledger = wait_ended(rated, journal, timeout=30 + count, check=fleet.check_alive)
    stop_workers(fleet)
    ledger.assert_clean()
    claimed = dict(TaskRecord.objects.filter(pk__in=rated.values()).values_list("uuid", "started_at"))
    claims = sorted(claimed.values())
    second = timedelta(seconds=1)
    # At most 5 starts in any window (t - 1 s, t]: the 6th start after any start is a second later or more.
    crowded = [(a, b) for a, b in zip(claims, claims[5:], strict=False) if b - a < second]
    assert not crowded, crowded[:3]
    assert any(b - a < second for a, b in zip(claims, claims[4:], strict=False)), "the rate was never reached"
    done = runs(journal)
    bodies = [done[key].wall_start for key in rated]
    lag = [done[key].wall_start - claimed[uuid].timestamp() for key, uuid in rated.items()]
    report(
        record_property,
        ledger,
        seconds=(claims[-1] - claims[0]).total_seconds(),
        most_bodies_in_a_second=max(sum(1 for b in bodies if a <= b < a + 1) for a in bodies),
        max_claim_to_body=max(lag),
    )


def test_a_paused_queue_starts_nothing_lets_running_tasks_end_and_drains_at_once_when_resumed(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    # With notifications a worker polls every 10 s: only the resume's wake-up can start the
    # backlog promptly. Without (SQLite) the poll is what finds it.
    listens = notifiers.get_notifier("default").supports_listen
    options = (*OPTIONS, "--poll-interval", "10" if listens else "0.2")
    fleet.start(*options)
    running = enqueue(flow_journal_pausable, journal, ["running"], seconds=1.5)
    wait_for(lambda: "running" in started_keys(journal), timeout=15, what="the first task to start")
    assert app.pause_queue(PAUSABLE_QUEUE, reason="e2e", by="test_flow")

    backlog = enqueue(flow_journal_pausable, journal, (f"plain-{n}" for n in range(10)), seconds=0.05)
    backlog |= enqueue(
        flow_journal_pausable_limited, journal, (f"limited-{n}" for n in range(6)), seconds=0.1
    )
    fleet.start(*options)  # a worker started while the queue is paused
    wait_status(running["running"], [TaskStatus.SUCCESS], timeout=15, what="the running task to end")
    time.sleep(1.0)  # time for both workers to look again (their slots are free, the enqueues woke them)
    fleet.check_alive()
    assert started_keys(journal) == {"running"}
    assert set(TaskRecord.objects.filter(pk__in=backlog.values()).values_list("status", flat=True)) == {"new"}
    assert "paused" in app.explain(backlog["limited-0"]).codes

    resumed = time.monotonic()
    assert app.resume_queue(PAUSABLE_QUEUE)
    ledger = wait_ended({**running, **backlog}, journal, timeout=30, since=resumed, check=fleet.check_alive)
    stop_workers(fleet)
    ledger.assert_clean()
    done = runs(journal)
    first_start = min(done[key].start for key in backlog) - resumed
    assert first_start < 2.0, f"the backlog started {first_start:.2f}s after the resume"
    assert ledger.recovery is not None and ledger.recovery < 3.0, f"drained in {ledger.recovery:.2f}s"
    report(record_property, ledger, first_start=first_start)


#: One enqueuer: Django set up, it says it is ready, waits for "go", then enqueues the
#: same unique task in a transaction held open a moment (so the others meet it) and prints
#: what it got.
ENQUEUER = """
import json, os, sys, time
import django
django.setup()
from django.db import transaction
from tests.tasks_flow import flow_unique

folder, n = sys.argv[1], int(sys.argv[2])
open(os.path.join(folder, f"ready-{n}"), "w").close()
while not os.path.exists(os.path.join(folder, "go")):
    time.sleep(0.0005)
with transaction.atomic():
    task = flow_unique.add_task(42) if n % 2 else flow_unique.add_task(tenant_id=42, full=False)
    time.sleep(0.05)
print(json.dumps({"uuid": str(task.uuid), "created": task.created}))
"""


def test_the_same_unique_task_enqueued_by_eight_processes_at_once_is_one_task(
    transactional_db: None, worker_env: dict[str, str], tmp_path: Path
) -> None:
    count = 8
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ENQUEUER, str(tmp_path), str(n)],
            cwd=REPO_ROOT,
            env=worker_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]
    try:

        def all_ready() -> bool:
            for proc in procs:
                if proc.poll() is not None:
                    pytest.fail(f"an enqueuer exited early: {proc.communicate()}")
            return len(list(tmp_path.glob("ready-*"))) == count

        wait_for(all_ready, timeout=60, what="the enqueuers to set Django up")
        (tmp_path / "go").touch()
        outputs = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert [proc.returncode for proc in procs] == [0] * count, [err for _out, err in outputs]
    got = [json.loads(out) for out, _err in outputs]
    [row] = TaskRecord.objects.filter(task_name="flow_unique")
    assert {result["uuid"] for result in got} == {str(row.uuid)}
    assert sorted(result["created"] for result in got) == [False] * (count - 1) + [True]
