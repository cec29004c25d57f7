"""Thousands of tasks across several workers, with and without a worker SIGKILLed mid-load."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from qtasks_django.conf import settings as qtasks_settings
from qtasks_django.models import TaskRecord
from qtasks_django.tasks.app import get_app

from .conftest import wait_for
from .faults import (  # noqa: F401 (fixtures)
    Fleet,
    assert_no_leftovers,
    enqueue_jobs,
    fleet_fixture,
    full_run,
    journal_fixture,
)
from .ledger import Journal, report, wait_ended

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 3
CONCURRENCY = 4


def test_thousands_of_tasks_across_workers_each_run_exactly_once(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    count = 10_000 if full_run() else 2_000
    tasks = enqueue_jobs(count, journal)

    started = time.monotonic()
    workers = [fleet.start("--concurrency", str(CONCURRENCY), wait=False) for _ in range(WORKERS)]
    ledger = wait_ended(tasks, journal, timeout=count / 10, check=fleet.check_alive)
    elapsed = time.monotonic() - started

    ledger.assert_clean()
    shares = Counter(TaskRecord.objects.filter(pk__in=tasks.values()).values_list("worker_id", flat=True))
    assert set(shares) == {w.id for w in workers}, shares  # every worker took part
    report(record_property, ledger, tasks=count, seconds=elapsed, per_second=count / elapsed)
    fleet.stop_all()


def test_sigkilled_worker_under_load_loses_nothing_and_recovers_within_the_lease(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    count = 3_000 if full_run() else 600
    tasks = enqueue_jobs(count, journal, seconds=0.1)
    victim, *survivors = [fleet.start("--concurrency", str(CONCURRENCY)) for _ in range(WORKERS)]

    def victim_is_busy() -> bool:
        mine = TaskRecord.objects.filter(worker_id=victim.id)
        return mine.filter(status="success").count() > 10 and mine.filter(status="process").count() >= 2

    wait_for(victim_is_busy, timeout=60, what="the victim to be working", interval=0.01)
    victim.send(signal.SIGKILL)
    killed_at = time.monotonic()
    assert victim.wait_exit(10) == -signal.SIGKILL
    held = set(TaskRecord.objects.filter(worker_id=victim.id, status="process").values_list("pk", flat=True))
    orphaned = {key: uuid for key, uuid in tasks.items() if uuid in held}
    assert orphaned, "the victim held no task when it was killed"
    assert_no_leftovers(victim)

    recovered = wait_ended(
        orphaned, journal, timeout=60, since=killed_at, check=lambda: fleet.check_alive(*survivors)
    )
    ledger = wait_ended(tasks, journal, timeout=count / 10, check=lambda: fleet.check_alive(*survivors))

    ledger.assert_clean(reruns_allowed=True)
    assert set(ledger.reruns) <= set(orphaned), "only tasks the dead worker held may run twice"
    # Each orphan was rescued and rerun by a survivor, or (a body that was already done)
    # recorded under the victim's still-valid lease as the victim died: never both.
    survivor_ids = {w.id for w in survivors}
    for row in TaskRecord.objects.filter(pk__in=orphaned.values()):
        rescued = row.rescues == 1 and row.worker_id in survivor_ids
        finished_by_victim = row.rescues == 0 and row.worker_id == victim.id
        assert rescued or finished_by_victim, (row.rescues, row.worker_id)
    ledger.recovery = recovered.recovery
    lease = django_settings.QTASKS["LEASE_TIMEOUT"] + django_settings.QTASKS["RESCUE_INTERVAL"]
    assert recovered.recovery < lease + 4, (
        f"recovery took {recovered.recovery:.1f}s (lease + sweep = {lease}s)"
    )
    report(record_property, ledger, orphaned=len(orphaned))
    fleet.stop_all()


def test_poison_task_killing_its_worker_ends_error_and_other_tasks_keep_flowing(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    poison = get_app().add_task("fault_kills_its_worker", str(journal), "poison").uuid
    tasks = enqueue_jobs(200, journal, seconds=0.1)
    started = time.monotonic()
    # One slot each: the poison pill takes down its worker and nothing else.
    options = ("--concurrency", "1")
    for _ in range(2):
        fleet.start(*options)

    deadline = started + (qtasks_settings.MAX_RESCUES + 1) * (_rescue_window() + 5)
    killed = _replace_dead_workers_until_ended(fleet, poison, options, deadline=deadline)
    took = time.monotonic() - started

    record = TaskRecord.objects.get(pk=poison)
    assert record.status == "error" and "WorkerLost" in record.traceback, record.traceback
    assert record.rescues == qtasks_settings.MAX_RESCUES
    assert journal.count("start")["poison"] == len(killed) == qtasks_settings.MAX_RESCUES + 1
    survivors = [w for w in fleet.workers if w.id not in killed]
    ledger = wait_ended(tasks, journal, timeout=120, check=lambda: fleet.check_alive(*survivors))
    ledger.assert_clean(reruns_allowed=True)
    report(record_property, ledger, kills=len(killed), poison_seconds=took)
    fleet.stop_all()


def test_a_killed_worker_s_long_tasks_recover_together_not_one_by_one(fleet: Fleet, journal: Journal) -> None:
    count, seconds = 20, 8.0
    tasks = enqueue_jobs(count, journal, seconds=seconds)
    options = ("--concurrency", str(count))
    victim = fleet.start(*options)
    wait_for(
        lambda: TaskRecord.objects.filter(status="process").count() == count,
        timeout=30,
        what="all 20 tasks to run",
        interval=0.05,
    )
    victim.send(signal.SIGKILL)
    killed_at = time.monotonic()
    assert victim.wait_exit(10) == -signal.SIGKILL
    assert_no_leftovers(victim)
    fresh = fleet.start(*options)

    ledger = wait_ended(tasks, journal, timeout=120, since=killed_at, check=lambda: fleet.check_alive(fresh))

    took = time.monotonic() - killed_at
    ledger.assert_clean(reruns_allowed=True)
    rows = TaskRecord.objects.filter(pk__in=tasks.values())
    assert {(row.status, row.rescues, row.worker_id) for row in rows} == {("success", 1, fresh.id)}
    # Side by side: lease + sweep + one task's 8 s (and start-up), far from 20 x 8 s.
    assert took < _rescue_window() + seconds + 8, f"recovery took {took:.1f}s"
    fleet.stop_all()


def test_tasks_claimed_alongside_a_poison_pill_are_not_condemned_with_it(
    fleet: Fleet, journal: Journal
) -> None:
    poison = get_app().add_task("fault_kills_its_worker", str(journal), "poison").uuid
    companions = enqueue_jobs(5, journal, prefix="companion", seconds=0.5)
    options = ("--concurrency", "6")  # one worker at a time, six slots: it claims them all at once
    fleet.start(*options)

    def expire_leases() -> None:
        # Skip the lease wait (the tests above wait for real): the next sweep requeues at once.
        TaskRecord.objects.filter(pk__in=[poison, *companions.values()], status="process").update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )

    deadline = time.monotonic() + 90
    killed = _replace_dead_workers_until_ended(
        fleet, poison, options, deadline=deadline, on_death=expire_leases
    )
    survivor = fleet.start(*options)  # a companion may still be waiting for a worker

    record = TaskRecord.objects.get(pk=poison)
    assert (record.status, record.rescues) == ("error", qtasks_settings.MAX_RESCUES), record.traceback
    assert len(killed) == qtasks_settings.MAX_RESCUES + 1
    ledger = wait_ended(companions, journal, timeout=60, check=lambda: fleet.check_alive(survivor))
    ledger.assert_clean(reruns_allowed=True)
    rows = TaskRecord.objects.in_bulk(companions.values())
    assert {key: (rows[uuid].status, rows[uuid].returning) for key, uuid in companions.items()} == {
        key: ("success", key) for key in companions
    }
    # They shared two dying workers with it, then ran alone (suspects) and finished.
    assert {row.rescues for row in rows.values()} <= {1, 2}
    fleet.stop_all()


def _replace_dead_workers_until_ended(
    fleet: Fleet,
    uuid: object,
    options: tuple[str, ...],
    *,
    deadline: float,
    on_death: Callable[[], None] | None = None,
) -> set[str]:
    """Like a process manager, replace each SIGKILLed worker until task ``uuid`` ends; return the dead ids."""
    dead: set[str] = set()
    while TaskRecord.objects.get(pk=uuid).status not in ("error", "success", "cancel"):
        assert time.monotonic() < deadline, f"task still {TaskRecord.objects.get(pk=uuid).status}"
        for worker in [w for w in fleet.workers if not w.alive() and w.id not in dead]:
            assert worker.proc.returncode == -signal.SIGKILL, worker.describe()
            assert_no_leftovers(worker)
            dead.add(worker.id)
            if on_death:
                on_death()
            fleet.start(*options, wait=False)
        time.sleep(0.1)
    return dead


def _rescue_window() -> float:
    return django_settings.QTASKS["LEASE_TIMEOUT"] + django_settings.QTASKS["RESCUE_INTERVAL"]
