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
    wait_status,
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


def test_task_claimed_alongside_a_poison_pill_is_not_condemned_with_it(
    fleet: Fleet, journal: Journal
) -> None:
    poison = get_app().add_task("fault_kills_its_worker", str(journal), "poison").uuid
    companion = get_app().add_task("fault_job", str(journal), "companion", 0.5).uuid
    options = ("--concurrency", "2")  # one worker at a time, two slots: it claims both at once
    fleet.start(*options)

    def expire_leases() -> None:
        # Skip the lease wait (the test above waits for real): the next sweep requeues at once.
        TaskRecord.objects.filter(pk__in=[poison, companion], status="process").update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )

    deadline = time.monotonic() + 60
    _replace_dead_workers_until_ended(fleet, poison, options, deadline=deadline, on_death=expire_leases)
    fleet.start(*options)  # the companion may still be waiting for a worker

    assert TaskRecord.objects.get(pk=poison).status == "error"
    record = wait_status(companion, ["success", "error"], timeout=20, what="the companion to end")
    assert (record.status, record.returning) == ("success", "companion"), record.traceback
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
