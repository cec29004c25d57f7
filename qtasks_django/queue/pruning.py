"""Delete finished tasks older than a retention, in short batches (``qtasks_prune``).

Each batch is its own transaction: it picks at most ``batch_size`` primary keys by
``finished_at`` (indexed) and deletes those rows; their progress items and log lines go
with them through the foreign keys (indexed too). No lock is held between batches, and
rows a worker may still touch (``new``, ``process``) are never candidates.

A ``retry`` row is an attempt whose successor carries the task on: waiters on the first
uuid follow ``retry_child_uuid`` to the final attempt. Such a row is kept while the last
attempt of its chain is still ``new`` or ``process``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import settings
from ..models import TaskLog, TaskProgress, TaskRecord
from ..status import TaskStatus

DEFAULT_BATCH_SIZE = 1000
PRUNABLE_STATUSES: tuple[str, ...] = (
    TaskStatus.SUCCESS,
    TaskStatus.ERROR,
    TaskStatus.CANCEL,
    TaskStatus.RETRY,
)
LIVE_STATUSES = frozenset({TaskStatus.NEW, TaskStatus.PROCESS})
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
# A chain longer than this is a corrupt row loop, not a real retry history.
_MAX_CHAIN_LENGTH = 1000


def parse_duration(value: str | float | timedelta) -> timedelta:
    """Turn ``"7d"``, ``"12h"``, ``"30m"``, ``"45s"``, ``"2w"`` or a number of seconds into a timedelta.

    Raises:
        ValueError: for anything else, or a negative number.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a retention cannot be negative, got {value!r}")
        return timedelta(seconds=value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a duration like 7d, 12h, 30m, 45s or seconds, got {value!r}")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNITS[unit or "s"])


def default_retention() -> timedelta:
    """Return ``QTASKS["PRUNE_AFTER"]`` (seconds; 7 days by default) as a timedelta."""
    return parse_duration(settings.PRUNE_AFTER)


def validate_statuses(statuses: Iterable[str]) -> tuple[str, ...]:
    """Return the statuses if every one may be pruned.

    Raises:
        ValueError: for ``new``/``process`` (a worker may still need the row) or an unknown name.
    """
    chosen = tuple(dict.fromkeys(s.strip() for s in statuses if s.strip()))
    if not chosen:
        raise ValueError("give at least one status")
    for status in chosen:
        if status in LIVE_STATUSES:
            raise ValueError(f"{status!r} tasks are not finished and are never pruned")
        if status not in PRUNABLE_STATUSES:
            raise ValueError(f"unknown status {status!r}; choose among {', '.join(PRUNABLE_STATUSES)}")
    return chosen


@dataclass
class PruneResult:
    """What a prune run deleted (or, in a dry run, would delete)."""

    tasks: int = 0
    progress_items: int = 0
    log_lines: int = 0
    batches: int = 0
    kept_retry_attempts: int = 0
    kept_in_rate_window: int = 0
    """Rate-limited tasks that started within their rate period: the gate still counts them."""
    """``retry`` rows old enough but kept because their chain's last attempt is still live."""
    dry_run: bool = False


@dataclass
class Pruner:
    """Delete finished tasks that ended before ``cutoff``, ``batch_size`` rows per transaction."""

    cutoff: datetime
    statuses: tuple[str, ...] = PRUNABLE_STATUSES
    batch_size: int = DEFAULT_BATCH_SIZE
    queue: str | None = None
    task_name: str | None = None
    dry_run: bool = False
    using: str = "default"
    result: PruneResult = field(default_factory=PruneResult)

    @classmethod
    def older_than(cls, retention: timedelta, **options: Any) -> Pruner:
        """Build a pruner for tasks that finished more than ``retention`` ago."""
        return cls(cutoff=timezone.now() - retention, **options)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.statuses = validate_statuses(self.statuses)
        self.result.dry_run = self.dry_run

    def run(self, on_batch: Callable[[PruneResult], None] | None = None) -> PruneResult:
        """Prune batch after batch until no candidate is left; call ``on_batch`` after each."""
        after: tuple[datetime, Any] | None = None
        while True:
            with transaction.atomic(using=self.using):
                rows = self._candidates(after)
                if not rows:
                    return self.result
                self._prune(rows)
            # Kept rows (and, in a dry run, every row) stay: continue past the last one.
            after = (rows[-1][0], rows[-1][1])
            self.result.batches += 1
            if on_batch is not None:
                on_batch(self.result)

    def _records(self) -> Any:
        return TaskRecord.objects.using(self.using)

    def _candidates(self, after: tuple[datetime, Any] | None) -> list[tuple[Any, ...]]:
        """Return the next batch as ``(finished_at, pk, status, retry_child_uuid)`` rows."""
        qs = self._records().filter(status__in=self.statuses, finished_at__lt=self.cutoff)
        if self.queue is not None:
            qs = qs.filter(queue=self.queue)
        if self.task_name is not None:
            qs = qs.filter(task_name=self.task_name)
        if after is not None:
            qs = qs.filter(Q(finished_at__gt=after[0]) | Q(finished_at=after[0], pk__gt=after[1]))
        fields = ("finished_at", "pk", "status", "retry_child_uuid", "started_at", "rate_period")
        return list(qs.order_by("finished_at", "pk").values_list(*fields)[: self.batch_size])

    def _prune(self, rows: list[tuple[Any, ...]]) -> None:
        retry_children = {pk: child for _, pk, status, child, _, _ in rows if status == TaskStatus.RETRY}
        live = live_chains(retry_children, self._chain_steps)
        # A rate gate counts the starts within its period, finished or not: deleting one
        # would let an extra task through (a short retention with "1000/d", say).
        now = timezone.now()
        counting = {
            pk
            for _, pk, _, _, started_at, period in rows
            if period is not None and started_at is not None and started_at > now - timedelta(seconds=period)
        }
        pks = [row[1] for row in rows if row[1] not in live and row[1] not in counting]
        self.result.kept_retry_attempts += len(live)
        self.result.kept_in_rate_window += len(counting - live)
        if pks:
            self._delete(pks)

    def _chain_steps(self, uuids: list[Any]) -> dict[Any, tuple[str, Any]]:
        rows = self._records().filter(pk__in=uuids).order_by().values_list("pk", "status", "retry_child_uuid")
        return {pk: (status, child) for pk, status, child in rows}

    def _delete(self, pks: list[Any]) -> None:
        if self.dry_run:
            self.result.tasks += len(pks)
            self.result.progress_items += TaskProgress.objects.using(self.using).filter(task__in=pks).count()
            self.result.log_lines += TaskLog.objects.using(self.using).filter(task__in=pks).count()
            return
        # Only the keys are loaded; the cascade to progress items and log lines is one
        # DELETE ... WHERE task_id IN (...) per table (no signals on those models).
        _, counts = self._records().filter(pk__in=pks).only("pk").delete()
        self.result.tasks += counts.get(self._records().model._meta.label, 0)
        self.result.progress_items += counts.get(TaskProgress._meta.label, 0)
        self.result.log_lines += counts.get(TaskLog._meta.label, 0)


def live_chains(
    retry_children: dict[Any, Any], chain_steps: Callable[[list[Any]], dict[Any, tuple[str, Any]]]
) -> set[Any]:
    """Return the ``retry`` rows (of ``{uuid: retry_child_uuid}``) whose chain still runs.

    ``chain_steps(uuids)`` returns ``{uuid: (status, retry_child_uuid)}`` for the rows
    that exist. A chain whose next attempt is missing has ended (it was pruned or
    deleted); one that reaches ``new`` or ``process`` is live.
    """
    frontier = {root: child for root, child in retry_children.items() if child is not None}
    live: set[Any] = set()
    for _ in range(_MAX_CHAIN_LENGTH):
        if not frontier:
            break
        steps = chain_steps(list(set(frontier.values())))
        next_frontier = {}
        for root, current in frontier.items():
            status, child = steps.get(current, (None, None))
            if status in LIVE_STATUSES:
                live.add(root)
            elif status == TaskStatus.RETRY and child is not None:
                next_frontier[root] = child
        frontier = next_frontier
    return live | set(frontier)
