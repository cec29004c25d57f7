"""qtasks_django's enqueue rates, and the rows the drains start from, through the real API."""

from __future__ import annotations

import time
from collections.abc import Callable
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


def bench_task(task_name: str) -> Any:
    """Return the bench task named ``task_name`` (``noop``, ``noop_unique``, ...)."""
    from bench import tasks

    return getattr(tasks, task_name)


def single_enqueue_rate(count: int, task_name: str = "noop") -> float:
    """Return ``task.add_task(i)`` per second: one call, one row, one commit, as a view does."""
    task = bench_task(task_name)
    clear_tasks()
    start = time.perf_counter()
    for i in range(count):
        task.add_task(i)
    return count / (time.perf_counter() - start)


def bulk_enqueue_rate(count: int, chunk: int = 1000, task_name: str = "noop") -> float | None:
    """Return tasks per second enqueued by ``app.add_tasks`` in chunks; None without that API."""
    from qtasks_django.tasks.app import get_app

    task = bench_task(task_name)

    app = get_app()
    if not hasattr(app, "add_tasks"):
        return None
    clear_tasks()
    calls = [[task(i) for i in range(first, min(first + chunk, count))] for first in range(0, count, chunk)]
    start = time.perf_counter()
    for batch in calls:
        app.add_tasks(batch)
    return count / (time.perf_counter() - start)


def prepare_backlog(task_name: str, count: int, concurrency_limit: int | None = None) -> datetime:
    """Write ``count`` ready ``task_name`` rows; return a time before all of them were created.

    A task with flow control gets the columns its enqueue would write (its limits, its
    unique key), with ``concurrency_limit`` in place of the declared limit when given.
    """
    from qtasks_django.models import TaskRecord

    flow = flow_columns(task_name, concurrency_limit)
    marker = timezone.now()
    for first in range(0, count, BACKLOG_BATCH):
        now = timezone.now()
        rows = [
            TaskRecord(task_name=task_name, args=[i], created_at=now, updated_at=now, eta=now, **flow(i, now))
            for i in range(first, min(first + BACKLOG_BATCH, count))
        ]
        TaskRecord.objects.bulk_create(rows)
    return marker


def flow_columns(task_name: str, concurrency_limit: int | None) -> Callable[[int, datetime], dict[str, Any]]:
    """Return ``(i, now) -> `` the flow columns of the call ``task(i)``, computed as the enqueue does."""
    from qtasks_django.tasks.validation import call_signature

    schema = bench_task(task_name).schema
    signature = call_signature(schema)

    def columns(i: int, now: datetime) -> dict[str, Any]:
        fields = schema.flow.fields(task_name, signature, ((i,), {}), now)
        if concurrency_limit is not None and "concurrency_limit" in fields:
            fields["concurrency_limit"] = concurrency_limit
        return fields

    return columns


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


def insert_finished_rows(count: int, task_names: tuple[str, ...] = ("noop",)) -> datetime:
    """Insert ``count`` finished rows, an equal share of each task; return the newest ``created_at``.

    They look like a month of history (created, started and finished in the past), so
    every later row is newer than all of them; a limited task's rows keep its limits
    (what the gates' indexes hold). ANALYZE follows, as autovacuum would.
    """
    newest = timezone.now() - timedelta(days=1)
    share, extra = divmod(count, len(task_names))
    for index, task_name in enumerate(task_names):
        _insert_finished(share + (index < extra), task_name, newest)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {task_table()}")
    return newest


def _insert_finished(count: int, task_name: str, newest: datetime) -> None:
    from bench.substrate import RowTemplate

    stamps = {
        "created_at": newest,
        "updated_at": newest,
        "eta": newest,
        "started_at": newest,
        "finished_at": newest,
    }
    flow = flow_columns(task_name, None)(0, newest)
    flow.pop("unique_key", None)  # a finished task holds no key, and they would all share one
    row = RowTemplate.of_task(task_name=task_name, status="success", returning=0, **stamps, **flow)
    # Row n is n seconds older than ``newest``: a history spread over the weeks before it.
    select = row.select_list(shifted=frozenset(stamps))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {task_table()} (uuid, {row.column_list()}) "
            f"SELECT gen_random_uuid(), {select} FROM generate_series(1, %s) AS n",
            [*row.values, count],
        )


def delete_newer_than(moment: datetime) -> None:
    """Delete the rows created after ``moment`` (earlier drains' rows; the history stays)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {task_table()} WHERE created_at > %s", [moment])
