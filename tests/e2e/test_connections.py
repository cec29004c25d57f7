"""How many database sessions a worker holds: at most the bound docs/operations.md gives.

Per worker process, at default settings (task processes, the PostgreSQL notifier):
the claim loop, the outcome writer and the listener (3), asgiref's one sync thread
for async tasks' ORM calls (1), up to ``concurrency`` task threads and one session per
task process (``concurrency`` of them). Each session is named ``qtasks_worker <worker id>``.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
from django.db import connection

from qtasks_django import app
from qtasks_django.conf import settings
from qtasks_django.models import TaskRecord
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def bound(concurrency: int) -> int:
    """The most sessions one worker process holds (docs/operations.md, "Database connections")."""
    return 4 + 2 * concurrency


class SessionCounter:
    """Sample, in a thread of its own, how many sessions carry names starting with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.counts: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psycopg

        params = {**connection.get_connection_params()}
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
                    [self.prefix.replace("_", r"\_") + "%"],
                ).fetchone()
                self.counts.append(row[0] if row else 0)
                time.sleep(0.01)

    def __enter__(self) -> SessionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)


def run_a_mix() -> list[str]:
    """Sync tasks that use the ORM (in task processes), async ones that do, generators, plain ones."""
    calls = [("ctx_tour",), ("actx_tour",), ("agen", 3), ("gen_list", 3), ("async_shared",)] * 10
    calls += [("add", i, i) for i in range(100)]
    uuids = [str(app.add_task(*call).uuid) for call in calls]

    def ended() -> bool:
        return TaskRecord.objects.filter(pk__in=uuids, status="success").count() == len(uuids)

    wait_for(ended, timeout=60, what="every task to succeed")
    return uuids


def test_a_worker_holds_at_most_its_bound_of_sessions(start_worker) -> None:
    worker = start_worker()
    worker.wait_registered()
    with SessionCounter(f"qtasks_worker {worker.id}") as counter:
        run_a_mix()
        time.sleep(0.3)  # idle again: what it keeps between tasks
    concurrency = settings.WORKER_CONCURRENCY
    assert 3 <= max(counter.counts) <= bound(concurrency), counter.counts
    print(f"sessions of one worker (concurrency {concurrency}): max {max(counter.counts)}")


def test_worker_processes_hold_at_most_their_bound_each(start_worker) -> None:
    worker = start_worker("--processes", "2")
    try:
        wait_for(lambda: _registered(worker.id, 2), timeout=30, what="both worker processes to register")
        with SessionCounter(f"qtasks_worker {worker.id}") as counter:
            run_a_mix()
            time.sleep(0.3)
    finally:
        # The supervisor's children run in sessions of their own: the SIGKILL of the
        # supervisor at teardown would leave them running.
        worker.send(signal.SIGTERM)
        assert worker.wait_exit(timeout=30) == 0
    assert max(counter.counts) <= 2 * bound(settings.WORKER_CONCURRENCY), counter.counts
    print(f"sessions of two worker processes: max {max(counter.counts)}")


def _registered(worker_id: str, count: int) -> bool:
    from qtasks_django.models import WorkerRecord

    return WorkerRecord.objects.filter(id__startswith=f"{worker_id}-").count() == count
