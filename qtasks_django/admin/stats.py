"""Statistics the admin shows: which workers are alive, and how each task has been doing.

Every query here is bounded by an index (a time window on ``finished_at``, the waiting rows
by ``status``) so that the pages stay fast on a table of millions of rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.db import connection
from django.db.models import Avg, Count, Max, Q, QuerySet

from ..conf import settings
from ..models import RegisteredTask, TaskRecord, WorkerRecord
from ..queue.presence import heartbeat_deadline, live_workers
from ..status import TaskStatus

#: The statistics of registered tasks cover the attempts that ended within this window.
STATS_WINDOW = timedelta(hours=24)
FAILED_STATUSES = (TaskStatus.ERROR, TaskStatus.RETRY)
#: The attempt that ended a run: no later attempt follows it. A retry, automatic (status
#: ``retry``) or from the admin (an ``error`` or ``cancel`` row), writes a new row and links
#: the old one to it through ``retry_child_uuid``; so a task that succeeds on its third
#: attempt leaves three rows, and only the third is its run's outcome.
FINAL_ATTEMPT = Q(retry_child_uuid__isnull=True) & ~Q(status=TaskStatus.RETRY)


# -- workers --------------------------------------------------------------------------


def worker_is_alive(worker: WorkerRecord, now: datetime | None = None) -> bool:
    return worker.stopped_at is None and worker.heartbeat_at >= heartbeat_deadline(now)


def serves_queue(worker: WorkerRecord, queue: str) -> bool:
    """Whether the worker claims tasks of ``queue`` (``*`` or no queues: all of them)."""
    queues = worker.queues or ["*"]
    return "*" in queues or queue in queues


def live_workers_by_task(names: Iterable[str], queues: dict[str, str]) -> dict[str, list[WorkerRecord]]:
    """For each task name, the live workers that registered it and serve its queue."""
    workers = {worker.pk: worker for worker in live_workers()}
    links = RegisteredTask.workers.through.objects.filter(
        registeredtask_id__in=list(names), workerrecord_id__in=list(workers)
    ).values_list("registeredtask_id", "workerrecord_id")
    result: dict[str, list[WorkerRecord]] = defaultdict(list)
    for name, worker_id in sorted(links):
        worker = workers[worker_id]
        if serves_queue(worker, queues.get(name, settings.DEFAULT_QUEUE)):
            result[name].append(worker)
    return result


class WaitingGroup(TypedDict):
    """The waiting tasks of one name on one queue."""

    task_name: str
    queue: str
    waiting: int


def waiting_without_live_worker() -> list[WaitingGroup]:
    """Waiting tasks that no live worker can run: ``{"task_name", "queue", "waiting"}`` each.

    A task name counts as known when a live worker registered it and claims its queue.
    """
    groups = list(
        TaskRecord.objects.filter(status=TaskStatus.NEW)
        .values("task_name", "queue")
        .annotate(waiting=Count("pk"))
        .order_by("task_name", "queue")
    )
    if not groups:
        return []
    workers = list(live_workers())
    names = {group["task_name"] for group in groups}
    registered: defaultdict[str, set[str]] = defaultdict(set)
    for name, worker_id in RegisteredTask.workers.through.objects.filter(
        registeredtask_id__in=names, workerrecord_id__in=[w.pk for w in workers]
    ).values_list("registeredtask_id", "workerrecord_id"):
        registered[name].add(worker_id)
    return [
        group
        for group in groups
        if not any(
            w.pk in registered[group["task_name"]] and serves_queue(w, group["queue"]) for w in workers
        )
    ]


# -- tasks ----------------------------------------------------------------------------


@dataclass(kw_only=True)
class TaskStats:
    """How one task did over the statistics window."""

    runs: int = 0
    """Runs that reached their outcome: their last attempt ended (however many it took)."""
    succeeded: int = 0
    failed: int = 0
    """Runs whose last attempt ended ``error``."""
    cancelled: int = 0
    attempts: int = 0
    """Attempts that ended, every status (retried ones too)."""
    attempts_per_run: float | None = None
    """The mean number of attempts the runs took (their last attempt's number)."""
    p50: float | None = None
    """Median duration in seconds of the attempts that ran."""
    p95: float | None = None
    last_error_at: datetime | None = None
    last_error_uuid: Any = None
    last_error: str = ""
    """The last line of the latest failed attempt's traceback."""

    @property
    def success_rate(self) -> float | None:
        """The share of runs that succeeded in the end (a success on a third attempt counts whole)."""
        return self.succeeded / self.runs if self.runs else None


def task_stats(names: Iterable[str], *, since: datetime) -> dict[str, TaskStats]:
    """The statistics of the tasks named: runs whose outcome came, and attempts that ended, since ``since``."""
    names = list(names)
    ended = TaskRecord.objects.filter(finished_at__gte=since, task_name__in=names)
    stats = {name: TaskStats() for name in names}
    for row in ended.values("task_name").annotate(
        runs=Count("pk", filter=FINAL_ATTEMPT),
        succeeded=Count("pk", filter=FINAL_ATTEMPT & Q(status=TaskStatus.SUCCESS)),
        failed=Count("pk", filter=FINAL_ATTEMPT & Q(status=TaskStatus.ERROR)),
        cancelled=Count("pk", filter=FINAL_ATTEMPT & Q(status=TaskStatus.CANCEL)),
        attempts=Count("pk"),
        attempts_per_run=Avg("attempt", filter=FINAL_ATTEMPT),
        last_error_at=Max("finished_at", filter=Q(status__in=FAILED_STATUSES)),
    ):
        stats[row["task_name"]] = TaskStats(
            runs=row["runs"],
            succeeded=row["succeeded"],
            failed=row["failed"],
            cancelled=row["cancelled"],
            attempts=row["attempts"],
            attempts_per_run=row["attempts_per_run"],
            last_error_at=row["last_error_at"],
        )
    for name, (p50, p95) in duration_percentiles(ended).items():
        stats[name].p50, stats[name].p95 = p50, p95
    for name, entry in stats.items():
        if entry.last_error_at is not None:
            _add_last_error(name, entry)
    return stats


def _add_last_error(name: str, entry: TaskStats) -> None:
    failed = (
        TaskRecord.objects.filter(finished_at=entry.last_error_at, task_name=name, status__in=FAILED_STATUSES)
        .values("uuid", "traceback")
        .first()
    )
    if failed:
        entry.last_error_uuid = failed["uuid"]
        lines = failed["traceback"].strip().splitlines()
        entry.last_error = lines[-1][:300] if lines else ""


def duration_percentiles(ended: QuerySet[TaskRecord]) -> dict[str, tuple[float, float]]:
    """Median and 95th percentile of run durations (seconds) per task name of ``ended``.

    PostgreSQL computes them (``percentile_cont``); elsewhere the durations are fetched
    and interpolated the same way here.
    """
    ran = ended.filter(started_at__isnull=False)
    if connection.vendor == "postgresql":
        return _percentiles_in_postgres(ran)
    durations: dict[str, list[float]] = defaultdict(list)
    for name, started, finished in ran.values_list("task_name", "started_at", "finished_at"):
        # ``ended`` rows have a finished_at (the window filters on it), ``ran`` rows a started_at.
        assert started is not None and finished is not None
        durations[name].append((finished - started).total_seconds())
    return {name: (percentile(values, 0.5), percentile(values, 0.95)) for name, values in durations.items()}


def _percentiles_in_postgres(ran: QuerySet[TaskRecord]) -> dict[str, tuple[float, float]]:
    inner, params = ran.order_by().values("task_name", "started_at", "finished_at").query.sql_with_params()
    sql = (
        "SELECT d.task_name, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.finished_at - d.started_at)), "
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM d.finished_at - d.started_at)) "
        f"FROM ({inner}) AS d GROUP BY d.task_name"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {name: (float(p50), float(p95)) for name, p50, p95 in cursor.fetchall()}


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile of ``values`` by linear interpolation (as ``percentile_cont``)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
