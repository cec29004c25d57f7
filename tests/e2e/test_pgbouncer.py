"""A worker behind PgBouncer in transaction pooling mode (the one scripts/test.sh starts).

The worker's ``default`` database goes through the pooler; its LISTEN goes straight to
PostgreSQL (the notifier's ``listen_database``), or nowhere (``None``: it polls).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest

from qtasks_django import app
from qtasks_django.models import TaskRecord
from tests.e2e.conftest import REPO_ROOT, wait_for, worker_database_url
from tests.tasks import add
from tests.tasks_e2e import e2e_span

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.pgbouncer]

#: A retried attempt's row ends in ``retry``; its successor carries on.
ENDED = ("success", "error", "cancel", "retry")


@pytest.fixture(autouse=True)
def _pooler_lets_go_of_the_test_database() -> Iterator[None]:
    """After the test's workers are gone, close PgBouncer's server connections to the test database.

    Pooled server connections outlive their clients; PostgreSQL would refuse to drop the
    test database while they are open. ``KILL`` drops them (and pauses the database in
    the pooler), ``RESUME`` lets the next test in.
    """
    # Autouse, so set up before ``start_worker`` and torn down after it has killed the workers.
    yield
    import psycopg
    from django.db import connection
    from psycopg import sql

    name = sql.Identifier(connection.settings_dict["NAME"])
    pooler = os.environ["QTASKS_TEST_PGBOUNCER_URL"].rstrip("/")
    with psycopg.connect(f"{pooler}/pgbouncer", autocommit=True) as console:
        console.execute(sql.SQL("KILL {}").format(name))
        console.execute(sql.SQL("RESUME {}").format(name))


@pytest.fixture(autouse=True)
def _the_workers_notifier(settings) -> None:
    """The test process wakes and cancels through PostgreSQL, as the pooled worker listens.

    The Redis leg of the suite (``QTASKS_TEST_NOTIFIER=redis``) would otherwise publish
    the test's own enqueues and cancels where this worker does not listen.
    """
    settings.QTASKS = {
        **settings.QTASKS,
        "NOTIFIER": {"BACKEND": "qtasks_django.notifiers.postgres.PostgresNotifier"},
    }


def pooled_env(listen: str) -> dict[str, str]:
    """A worker's environment: ``default`` through PgBouncer, LISTEN per ``listen`` (a URL or ``none``)."""
    from django.db import connection

    pooler = os.environ["QTASKS_TEST_PGBOUNCER_URL"].rstrip("/")
    return {
        "DATABASE_URL": f"{pooler}/{connection.settings_dict['NAME']}",
        "QTASKS_TEST_LISTEN_DATABASE": listen,
        "QTASKS_TEST_NOTIFIER": "",  # the PostgreSQL notifier, also in the Redis leg of the suite
    }


def enqueue_through_pooler(env: dict[str, str], code: str) -> None:
    """Run ``code`` in a Django process whose ``default`` database is the pooler."""
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env},
        check=True,
        capture_output=True,
        timeout=60,
    )


def ended(uuids: list[str]) -> bool:
    return TaskRecord.objects.filter(pk__in=uuids, status__in=ENDED).count() == len(uuids)


def start_latency(uuid: str) -> timedelta:
    row = TaskRecord.objects.get(pk=uuid)
    assert row.started_at is not None
    return row.started_at - row.created_at


def test_worker_behind_pgbouncer_listening_directly(start_worker) -> None:
    env = pooled_env(listen=worker_database_url())
    # A 10 s poll: a task that starts within a second was woken by a notification.
    worker = start_worker("--poll-interval", "10", env=env)
    worker.wait_registered()
    assert "LISTEN via 'direct'" in worker.stdout()

    # Sync (in task processes, using the ORM), async, generators, retries, failures.
    calls = [("add", 2, 3), ("async_shared",), ("ctx_tour",), ("gen_list", 3), ("agen", 3)]
    calls += [("succeeds_third",), ("risky",)]
    uuids = [str(app.add_task(*call).uuid) for call in calls]
    uuids += [str(add.add_task(i, i).uuid) for i in range(40)]
    wait_for(lambda: ended(uuids), timeout=60, what="every task to end")
    rows = {str(r.uuid): r for r in TaskRecord.objects.filter(pk__in=uuids)}
    assert rows[uuids[0]].returning == 5
    assert rows[uuids[1]].returning == "async shared task"
    assert rows[uuids[2]].returning["same"] is True
    assert [rows[u].status for u in uuids[:5]] == ["success"] * 5
    assert all(rows[u].status == "success" for u in uuids[7:])
    # Retries run to their last attempt through the pooler: the chain's end holds the outcome.
    third = app.get(uuids[5]).wait_result(timeout=30)
    assert third is not None and third.returning == "third time"
    last_risky = app.get(uuids[6]).wait_result(timeout=30)
    assert last_risky is not None and last_risky.status == "error" and last_risky.attempt > 1

    # An enqueue through the pooler: its pg_notify travels in the INSERT's transaction,
    # through PgBouncer, to the worker's direct LISTEN.
    enqueue_through_pooler(env, "from tests.tasks import add; print(add.add_task(20, 22).uuid)")
    pooled = TaskRecord.objects.get(task_name="add", args=[20, 22])
    wait_for(lambda: ended([str(pooled.uuid)]), timeout=5, what="the task enqueued through PgBouncer")
    assert pooled.__class__.objects.get(pk=pooled.pk).returning == 42
    assert start_latency(str(pooled.uuid)) < timedelta(seconds=1)

    # A direct enqueue wakes the idle worker at once too, and a cancel reaches a running task.
    long = e2e_span.add_task(30)
    wait_for(
        lambda: TaskRecord.objects.filter(pk=long.uuid, status="process").exists(),
        timeout=5,
        what="the long task to start",
    )
    assert start_latency(str(long.uuid)) < timedelta(seconds=1)
    app.cancel(long.uuid, "enough")
    wait_for(lambda: ended([str(long.uuid)]), timeout=15, what="the cancelled task to end")
    assert TaskRecord.objects.get(pk=long.uuid).status == "cancel"
    assert "Traceback" not in worker.stderr(), worker.describe()


def test_worker_behind_pgbouncer_without_a_direct_connection_polls(start_worker) -> None:
    worker = start_worker("--poll-interval", "0.2", env=pooled_env(listen="none"))
    worker.wait_registered()
    assert "no LISTEN: polling" in worker.stdout()
    uuids = [str(add.add_task(i, 1).uuid) for i in range(30)] + [str(app.add_task("async_shared").uuid)]
    wait_for(lambda: ended(uuids), timeout=60, what="every task to end by polling")
    assert TaskRecord.objects.filter(pk__in=uuids, status="success").count() == len(uuids)
    assert "Traceback" not in worker.stderr(), worker.describe()
