"""Database outages under load: PostgreSQL restarted (fast and immediate), connections killed.

The restarts happen on a private cluster (tests/e2e/servers.py), never on the shared
server; ``pg_terminate_backend`` on the shared server only hits this test's database.
"""

from __future__ import annotations

import statistics
import time

import pytest
from django.db import OperationalError, connection, connections

from qtasks_django.models import TaskRecord

from .conftest import wait_for
from .faults import (  # noqa: F401 (fixtures)
    Fleet,
    enqueue_jobs,
    fleet_fixture,
    journal_fixture,
    wakeup_latencies,
)
from .ledger import Journal, report, wait_ended
from .servers import PrivatePostgres, private_db_fixture, private_postgres_fixture  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

OUTAGE_RECOVERY = 15  # seconds from "the database is back" to "tasks finish again"
SLOW_POLL = 2.0


def _successes(tasks: dict[str, object], using: str = "default") -> int:
    """How many of ``tasks`` succeeded; reconnects when the server went away meanwhile."""
    for _ in range(50):
        try:
            return TaskRecord.objects.using(using).filter(pk__in=tasks.values(), status="success").count()
        except OperationalError:
            connections[using].close()
            time.sleep(0.2)
    raise AssertionError(f"database {using!r} did not come back")


def _wait_progress(tasks: dict[str, object], beyond: int, *, using: str, fleet: Fleet, what: str) -> float:
    """Wait until more than ``beyond`` tasks succeeded; return when (monotonic)."""

    def moved() -> bool:
        fleet.check_alive()
        return _successes(tasks, using) > beyond

    assert beyond < len(tasks), f"all {len(tasks)} tasks succeeded before {what}: the backlog is too small"
    wait_for(moved, timeout=OUTAGE_RECOVERY, what=f"{what} (beyond {beyond} of {len(tasks)})", interval=0.05)
    return time.monotonic()


def test_postgres_restarts_under_load_lose_nothing_and_run_nothing_twice(
    fleet: Fleet,
    journal: Journal,
    private_postgres: PrivatePostgres,
    private_db: str,
    record_property,
) -> None:
    tasks = enqueue_jobs(500, journal, using=private_db, seconds=0.05)
    env = {"DATABASE_URL": private_postgres.url}
    for _ in range(2):  # polling rarely: work that goes on after an outage was claimed through LISTEN
        fleet.start("--concurrency", "4", "--poll-interval", str(SLOW_POLL), env=env, using=private_db)

    recoveries = {}
    for mode in ("fast", "immediate"):
        _wait_progress(tasks, _successes(tasks, private_db) + 30, using=private_db, fleet=fleet, what="load")
        restarted = time.monotonic()
        private_postgres.restart(mode)
        connections[private_db].close()
        back = time.monotonic()
        resumed = _wait_progress(
            tasks,
            _successes(tasks, private_db),
            using=private_db,
            fleet=fleet,
            what=f"work after a {mode} restart",
        )
        recoveries[mode] = resumed - restarted
        record_property(f"outage_{mode}", back - restarted)

    ledger = wait_ended(tasks, journal, timeout=120, using=private_db, check=fleet.check_alive)
    # Work in flight during an outage may be rescued and run again (at least once); never a
    # second completion of a run that was not rescued, never a task lost or stranded.
    ledger.assert_clean(reruns_allowed=True)
    logs = "".join(w.stderr() for w in fleet.workers)
    assert "database unavailable" in logs or "lost its PostgreSQL listener" in logs  # it noticed, and said so

    time.sleep(SLOW_POLL)  # each listener has reconnected by its next wait
    latencies = wakeup_latencies(journal, using=private_db)
    assert statistics.median(latencies) < 0.5, f"wake-ups did not come back after the restarts: {latencies}"
    report(
        record_property,
        ledger,
        wakeup_after=max(latencies),
        **{f"recovery_{m}": s for m, s in recoveries.items()},
    )
    fleet.stop_all()


def _terminate_backends() -> int:
    """Kill every other connection to this test's database (and only to it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_killed_connections_under_load_lose_nothing_and_run_nothing_twice(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    # About 5 s of work: some must remain after the last kill.
    tasks = enqueue_jobs(2000, journal, seconds=0.02)
    for _ in range(2):
        fleet.start("--concurrency", "4")

    killed = 0
    for _round in range(6):
        _wait_progress(tasks, _successes(tasks) + 20, using="default", fleet=fleet, what="load between kills")
        killed += _terminate_backends()
    last_kill = time.monotonic()
    resumed = _wait_progress(
        tasks, _successes(tasks), using="default", fleet=fleet, what="work after the last kill"
    )

    ledger = wait_ended(tasks, journal, timeout=120, check=fleet.check_alive)
    ledger.assert_clean(reruns_allowed=True)
    assert killed >= 6 * 2  # each round hit at least each worker's connection
    report(record_property, ledger, connections_killed=killed, recovery=resumed - last_kill)
    fleet.stop_all()
