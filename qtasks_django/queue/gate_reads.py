"""What a gated claim reads and writes: candidates, key locks, gate counts, the lease.

On PostgreSQL each is one raw statement through psycopg's cursor, prepared once per
connection: a gated claim is a handful of round trips with no ORM work, since a worker
makes one for each limited task it starts (limited tasks are never claimed ahead).
Elsewhere (SQLite, a development database) the ORM does the same reads.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import Count

from ..models import PausedQueue, TaskRecord
from ..status import TaskStatus
from .cursors import kept_cursor
from .gate_heads import COLUMNS, beyond
from .planned import fetch_planned
from .returning import records, returning_columns

#: The first number of the two-number advisory lock keys (the second is the key's
#: hash): the locks never collide with an application's one-number locks.
LOCK_SPACE = 0x5174_6B73
#: Planner settings turned off for the candidates' query (``GateReads._fetch``).
_PLAN_OFF = {"enable_sort": "off", "jit": "off", "max_parallel_workers_per_gather": "0"}


class RateWindow:
    """What a claim knows of one rate key's starts within its period.

    Reading every start in the window would cost a rate limit of 10,000 per hour 10,000
    rows per claim. A claim admits at most ``take`` (its free slots), so it reads only the
    starts ``limit - take`` to ``limit`` from the newest: if none of them is in the window,
    at most ``limit - take`` starts are, and ``take`` more fit.
    """

    def __init__(self, limit: int, period: float, take: int) -> None:
        self.limit, self.period = limit, period
        self.skip, self.take = max(0, limit - take), min(limit, take)
        self.count = self.skip  # an upper bound until the starts say otherwise
        self.oldest: datetime | None = None  # the oldest start in the window, when it is full

    def read(self, starts: list[datetime]) -> None:
        """Take the starts at positions ``skip`` onwards (newest first) that are in the window."""
        if starts:
            self.count = self.skip + len(starts)
            self.oldest = min(starts)

    def reopens_at(self, now: datetime) -> datetime:
        """When the window, full now, has room again: its oldest start leaves it."""
        if self.oldest is not None:
            return self.oldest + timedelta(seconds=self.period)
        if self.skip == 0:
            return now + timedelta(seconds=self.period)  # it holds only this claim's starts
        return now  # its oldest start was not read: the next look reads it


class GateReads:
    """The gated claim's statements on the database ``using``."""

    def __init__(self, using: str) -> None:
        self.using = using
        self.connection = connections[using]
        self.postgres = self.connection.vendor == "postgresql"
        quote = self.connection.ops.quote_name
        self.table = quote(TaskRecord._meta.db_table)
        self.paused = quote(PausedQueue._meta.db_table)

    def candidates(self, queues: list[str] | None, now: datetime, rows: int) -> list[dict[str, Any]]:
        """The first ready limited rows in run order, in queues that are not paused."""
        if not self.postgres:
            ready = TaskRecord.objects.using(self.using).ready(queues, now).limited()
            return list(ready.values(*COLUMNS)[:rows])
        queue_filter = "AND queue = ANY(%s)" if queues else ""
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM {self.table} AS t WHERE status = 'new' "
            f"AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL) AND eta <= %s {queue_filter} "
            f"AND NOT EXISTS (SELECT FROM {self.paused} AS p WHERE p.queue = t.queue) "
            f"ORDER BY priority, created_at LIMIT %s"
        )
        found = self._fetch(sql, [now, *([list(queues)] if queues else []), rows], planned=True)
        return [dict(zip(COLUMNS, row, strict=True)) for row in found]

    def begin(self) -> None:
        """The claim's first statement in its transaction."""
        if not self.postgres:
            # No advisory locks here: a first write takes the database's write lock until
            # commit, so claims go one at a time. The UPDATE changes no row, but SQLite takes
            # the lock for it all the same. (Raw: Django runs no SQL for an UPDATE it knows
            # matches nothing.)
            with self.connection.cursor() as cursor:
                cursor.execute(f"UPDATE {self.paused} SET reason = reason WHERE 1 = 0")

    def lock(self, keys: list[str]) -> set[str]:
        """Take the advisory locks of ``keys`` that no other transaction holds; return those."""
        if not self.postgres or not keys:
            return set(keys)
        sql = "SELECT k FROM unnest(%s::text[], %s::int[]) AS t(k, h) WHERE pg_try_advisory_xact_lock(%s, h)"
        return {k for (k,) in self._fetch(sql, [keys, [_hash(k) for k in keys], LOCK_SPACE])}

    def counts(self, keys: list[str], windows: dict[str, RateWindow], now: datetime) -> dict[str, int]:
        """Running tasks per concurrency key; fill each ``RateWindow`` with its starts."""
        running: dict[str, int] = defaultdict(int)
        if not self.postgres:
            rows = TaskRecord.objects.using(self.using).filter(
                status=TaskStatus.PROCESS, concurrency_key__in=keys
            )
            running.update(rows.order_by().values_list("concurrency_key").annotate(n=Count("pk")))
            for key, window in windows.items():
                since = now - timedelta(seconds=window.period)
                window.read(
                    recent_starts(TaskRecord.objects.using(self.using), key, since, window.limit)[
                        window.skip :
                    ]
                )
            return running
        # One statement: the running rows of the keys, then each rate key's starts at the
        # positions its window needs (an index-only walk of ``qtasks_task_rate_idx``).
        sql = (
            f"SELECT concurrency_key, NULL::timestamptz FROM {self.table} "
            f"WHERE status = 'process' AND concurrency_key = ANY(%s) "
            f"UNION ALL SELECT k.key, s.started_at FROM unnest(%s::text[], %s::float8[], %s::int[], %s::int[]) "
            f"AS k(key, period, skip, take) CROSS JOIN LATERAL (SELECT started_at FROM {self.table} "
            f"WHERE rate_key = k.key AND started_at > %s - k.period * interval '1 second' "
            f"ORDER BY started_at DESC OFFSET k.skip LIMIT k.take) AS s"
        )
        names = list(windows)
        params = [
            keys,
            names,
            [windows[k].period for k in names],
            [windows[k].skip for k in names],
            [windows[k].take for k in names],
            now,
        ]
        starts: dict[str, list[datetime]] = defaultdict(list)
        for key, started_at in self._fetch(sql, params):
            if started_at is None:
                running[key] += 1
            else:
                starts[key].append(started_at)
        for key, window in windows.items():
            window.read(starts[key])
        return running

    def beyond(
        self, closed: dict[str, set[str]], queues: list[str] | None, now: datetime, *, per_key: int, rows: int
    ) -> list[dict[str, Any]]:
        """Ready limited rows of keys not in ``closed`` (``gate_heads``)."""
        if self.postgres:
            self._fetch("SET LOCAL jit = off", [], prepare=False)  # see ``_fetch``
        ready = TaskRecord.objects.using(self.using).ready(queues, now).limited()
        return beyond(ready, closed, using=self.using, queues=queues, now=now, per_key=per_key, rows=rows)

    def lease(self, chosen: list[Any], lease: dict[str, Any]) -> list[TaskRecord]:
        """Lease the chosen rows still waiting (a cancel may have taken one since it was read)."""
        if not self.postgres:
            manager = TaskRecord.objects.using(self.using)
            manager.filter(pk__in=chosen, status=TaskStatus.NEW).update(**lease)
            return list(manager.filter(pk__in=chosen, lease_token=lease["lease_token"]))
        sql = (
            f"UPDATE {self.table} SET status = %s, worker_id = %s, lease_token = %s, lease_expires_at = %s, "
            f"started_at = %s, updated_at = %s WHERE uuid = ANY(%s) AND status = 'new' "
            f"RETURNING {returning_columns(self.connection)}"
        )
        return records(self.connection, self.using, self._fetch(sql, [*lease.values(), chosen]))

    def _fetch(
        self, sql: str, params: list[Any], *, prepare: bool = True, planned: bool = False
    ) -> list[tuple[Any, ...]]:
        if planned:
            # With a backlog of limited rows the planner may sort them all for the first
            # 64, start parallel workers, or JIT-compile a plan of that cost (each tried:
            # 15 to 90 ms for a 1 ms query). Without them, the only plan left walks
            # ``qtasks_task_limited_idx`` in run order and stops at the limit (the free
            # claim does the same).
            return fetch_planned(self.connection, sql, params, _PLAN_OFF)
        with self.connection.wrap_database_errors:
            cursor = kept_cursor(self.connection)
            cursor.execute(sql, params, prepare=prepare)
            return cursor.fetchall() if cursor.description else []


def recent_starts(manager: Any, key: str, since: datetime, count: int) -> list[datetime]:
    """The newest ``count`` starts of the rate key ``key`` after ``since``, newest first."""
    starts = (
        manager.filter(rate_key=key, started_at__gt=since)
        .order_by("-started_at")
        .values_list("started_at", flat=True)[:count]
    )
    return [start for start in starts if start is not None]  # the filter leaves none; for the types


def _hash(key: str) -> int:
    """A stable signed 32-bit hash of a gate key (the advisory lock's second number)."""
    value = zlib.crc32(key.encode("utf-8", "surrogatepass"))
    return value - 2**32 if value >= 2**31 else value
