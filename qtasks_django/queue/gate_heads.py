"""The first ready rows of each gate key: how a gated claim looks past keys whose gates are closed.

Walking the ready limited rows in run order past the rows of a closed key costs a step per
row: a backlog of 100,000 tasks of one busy account made every claim read them all
(30 ms; a million, a third of a second). On PostgreSQL a loose index scan hops from key
to key instead — one index probe per distinct key, a recursive query over the partial
index ``(key, priority, created_at)`` of waiting rows — and reads the first few ready
rows of each key not known to be closed. Elsewhere (SQLite, a development database) the
walk excludes the closed keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import QuerySet

from ..models import PausedQueue, TaskRecord

COLUMNS = ("uuid", "concurrency_key", "concurrency_limit", "rate_key", "rate_limit", "rate_period")
KEY_COLUMNS = ("concurrency_key", "rate_key")


def _kind(column: str, alias: str = "") -> str:
    """The rows a key column's scan covers: a row with both keys is found by its
    concurrency key (and admitted only if its rate gate has room too). The partial
    indexes ``qtasks_task_concurrency_idx`` and ``qtasks_task_rate_key_idx`` say the same."""
    if column == "concurrency_key":
        return f"{alias}concurrency_key IS NOT NULL"
    return f"{alias}rate_key IS NOT NULL AND {alias}concurrency_key IS NULL"


def beyond(
    ready: QuerySet[TaskRecord],
    closed: dict[str, set[str]],
    *,
    using: str,
    queues: list[str] | None,
    now: datetime,
    per_key: int,
    rows: int,
) -> list[dict[str, Any]]:
    """Ready limited rows of keys not in ``closed`` (by column), in run order: up to ``per_key`` each."""
    if connections[using].vendor != "postgresql":
        walk = ready.exclude(concurrency_key__in=list(closed["concurrency_key"]))
        walk = walk.exclude(rate_key__in=list(closed["rate_key"]))
        return list(walk.values(*COLUMNS)[:rows])
    found: list[dict[str, Any]] = []
    for column in KEY_COLUMNS:
        found += _heads(
            column, closed[column], using=using, queues=queues, now=now, per_key=per_key, rows=rows
        )
    found.sort(key=lambda row: (row["priority"], row["created_at"]))
    return found


def _heads(
    column: str,
    closed: set[str],
    *,
    using: str,
    queues: list[str] | None,
    now: datetime,
    per_key: int,
    rows: int,
) -> list[dict[str, Any]]:
    connection = connections[using]
    quote = connection.ops.quote_name
    table = quote(TaskRecord._meta.db_table)
    paused = quote(PausedQueue._meta.db_table)
    kind = _kind(column)
    picked = ", ".join(f"r.{quote(name)}" for name in (*COLUMNS, "priority", "created_at"))
    queue_filter = "AND r.queue = ANY(%s)" if queues else ""
    sql = (
        f"WITH RECURSIVE keys(k) AS ("
        f"SELECT min({column}) FROM {table} WHERE status = 'new' AND {kind} "
        f"UNION ALL SELECT (SELECT min({column}) FROM {table} WHERE status = 'new' AND {kind} "
        f"AND {column} > keys.k) FROM keys WHERE keys.k IS NOT NULL) "
        f"SELECT {picked} FROM keys CROSS JOIN LATERAL (SELECT * FROM {table} AS r WHERE r.status = 'new' "
        f"AND {_kind(column, 'r.')} AND r.{column} = keys.k AND r.eta <= %s {queue_filter} "
        f"AND NOT EXISTS (SELECT FROM {paused} AS p WHERE p.queue = r.queue) "
        f"ORDER BY r.priority, r.created_at LIMIT %s) AS r "
        f"WHERE keys.k IS NOT NULL AND NOT (keys.k = ANY(%s)) LIMIT %s"
    )
    params: list[Any] = [now, *([list(queues)] if queues else []), per_key, sorted(closed), rows]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
