"""qtasks_django's enqueue rates, and the rows the drains start from, through the real API."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

BACKLOG_BATCH = 2000


def task_table() -> str:
    from qtasks_django.models import TaskRecord

    return TaskRecord._meta.db_table


def clear_tasks() -> None:
    """Empty the task table (progress items and log lines go with it)."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {task_table()} CASCADE")


def single_enqueue_rate(count: int) -> float:
    """Return ``noop.add_task(i)`` per second: one call, one row, one commit, as a view does."""
    from bench.tasks import noop

    clear_tasks()
    start = time.perf_counter()
    for i in range(count):
        noop.add_task(i)
    return count / (time.perf_counter() - start)


def bulk_enqueue_rate(count: int, chunk: int = 1000) -> float | None:
    """Return tasks per second enqueued by ``app.add_tasks`` in chunks; None without that API."""
    from bench.tasks import noop
    from qtasks_django.tasks.app import get_app

    app = get_app()
    if not hasattr(app, "add_tasks"):
        return None
    clear_tasks()
    calls = [[noop(i) for i in range(first, min(first + chunk, count))] for first in range(0, count, chunk)]
    start = time.perf_counter()
    for batch in calls:
        app.add_tasks(batch)
    return count / (time.perf_counter() - start)


def prepare_backlog(task_name: str, count: int) -> datetime:
    """Write ``count`` ready ``task_name`` rows; return a time before all of them were created."""
    from qtasks_django.models import TaskRecord

    marker = timezone.now()
    for first in range(0, count, BACKLOG_BATCH):
        now = timezone.now()
        rows = [
            TaskRecord(task_name=task_name, args=[i], created_at=now, updated_at=now, eta=now)
            for i in range(first, min(first + BACKLOG_BATCH, count))
        ]
        TaskRecord.objects.bulk_create(rows)
    return marker


def drained_since(marker: datetime) -> dict[str, Any]:
    """Return how many rows created after ``marker`` succeeded, and the first start and last finish."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(*) FILTER (WHERE status = 'success'), min(started_at), max(finished_at) "
            f"FROM {task_table()} WHERE created_at >= %s",
            [marker],
        )
        total, succeeded, first_start, last_finish = cursor.fetchone()
    return {"total": total, "succeeded": succeeded, "first_start": first_start, "last_finish": last_finish}


def insert_finished_rows(count: int) -> datetime:
    """Insert ``count`` finished ``noop`` rows in one statement; return the newest ``created_at``.

    They look like a month of history (created, started and finished in the past), so
    every later row is newer than all of them. ANALYZE follows, as autovacuum would.
    """
    from bench.substrate import RowTemplate

    newest = timezone.now() - timedelta(days=1)
    stamps = {
        "created_at": newest,
        "updated_at": newest,
        "eta": newest,
        "started_at": newest,
        "finished_at": newest,
    }
    row = RowTemplate.of_task(status="success", returning=0, **stamps)
    # Row n is n seconds older than ``newest``: a history spread over the weeks before it.
    select = row.select_list(shifted=frozenset(stamps))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {task_table()} (uuid, {row.column_list()}) "
            f"SELECT gen_random_uuid(), {select} FROM generate_series(1, %s) AS n",
            [*row.values, count],
        )
        cursor.execute(f"ANALYZE {task_table()}")
    return newest


def delete_newer_than(moment: datetime) -> None:
    """Delete the rows created after ``moment`` (earlier drains' rows; the history stays)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {task_table()} WHERE created_at > %s", [moment])
