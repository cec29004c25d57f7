"""The substrate's limits: what PostgreSQL itself does per second, through psycopg alone.

Both measures use a scratch table built ``LIKE`` the task table (same columns, same
indexes), one row per statement and one commit per row, on one connection, so that
qtasks_django's rates divided by these say how much of the database's speed it keeps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

SCRATCH_TABLE = "bench_substrate"


def connect(autocommit: bool = True) -> Any:
    """Open a psycopg connection to Django's default database (outside Django)."""
    import psycopg
    from django.db import connection

    params = dict(connection.get_connection_params())
    params.pop("cursor_factory", None)  # Django's server-side binding cursor
    params.pop("context", None)  # Django's type adapters
    return psycopg.connect(**params, autocommit=autocommit)


@dataclass(frozen=True)
class RowTemplate:
    """One task row as the database stores it: column names, SQL casts and values.

    Built from the model's own defaults, so columns added later are filled too. The
    primary key is left out: the database generates it with ``gen_random_uuid()``.
    """

    columns: tuple[str, ...]
    casts: tuple[str, ...]
    values: tuple[Any, ...]

    @classmethod
    def of_task(cls, **fields: Any) -> RowTemplate:
        """Return the row of a fresh ``noop`` task, with ``fields`` changed."""
        from django.db import connection

        from bench.tasks import noop
        from qtasks_django.models import TaskRecord

        record = TaskRecord(**{"task_name": noop.task_name, "args": [0], **fields})
        chosen = [f for f in TaskRecord._meta.concrete_fields if not f.primary_key]
        return cls(
            columns=tuple(f.column for f in chosen),
            casts=tuple(f.cast_db_type(connection) for f in chosen),
            values=tuple(f.get_db_prep_save(f.pre_save(record, add=True), connection) for f in chosen),
        )

    def column_list(self) -> str:
        """Return the quoted column names (``returning`` is an SQL keyword)."""
        return ", ".join(f'"{column}"' for column in self.columns)

    def select_list(self, shifted: frozenset[str] = frozenset()) -> str:
        """Return ``%s::type, ...``; ``shifted`` columns go back ``n`` seconds (``n`` from a series)."""
        items = [f"%s::{cast}" for cast in self.casts]
        return ", ".join(
            f"{item} - (n * interval '1 second')" if column in shifted else item
            for column, item in zip(self.columns, items, strict=True)
        )


@contextmanager
def scratch_table(conn: Any) -> Iterator[str]:
    """Create the scratch table like the task table (columns, defaults, indexes); drop it after."""
    from qtasks_django.models import TaskRecord

    source = TaskRecord._meta.db_table
    conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
    conn.execute(f"CREATE TABLE {SCRATCH_TABLE} (LIKE {source} INCLUDING DEFAULTS INCLUDING INDEXES)")
    try:
        yield SCRATCH_TABLE
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")


def insert_rate(count: int) -> float:
    """Return single-row INSERT + COMMIT per second (autocommit, one row per statement)."""
    row = RowTemplate.of_task()
    with connect() as conn, scratch_table(conn) as table:
        sql = (
            f"INSERT INTO {table} (uuid, {row.column_list()}) VALUES (gen_random_uuid(), {row.select_list()})"
        )
        start = time.perf_counter()
        for _ in range(count):
            conn.execute(sql, row.values)
        return count / (time.perf_counter() - start)


def claim_rate(count: int) -> float:
    """Return one-row ``FOR UPDATE SKIP LOCKED`` claim + UPDATE + COMMIT per second."""
    row = RowTemplate.of_task()
    with connect() as conn, scratch_table(conn) as table:
        conn.execute(
            f"INSERT INTO {table} (uuid, {row.column_list()}) SELECT gen_random_uuid(), {row.select_list()} "
            f"FROM generate_series(1, %s) AS n",
            [*row.values, count],
        )
        conn.execute(f"ANALYZE {table}")
        sql = (
            f"UPDATE {table} SET status = 'process', worker_id = 'raw', lease_token = gen_random_uuid(), "
            f"lease_expires_at = now() + interval '60 seconds', started_at = now(), updated_at = now() "
            f"WHERE uuid IN (SELECT uuid FROM {table} WHERE status = 'new' AND eta <= now() "
            f"ORDER BY priority, created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
        )
        start = time.perf_counter()
        for _ in range(count):
            conn.execute(sql)
        elapsed = time.perf_counter() - start
        claimed = conn.execute(f"SELECT count(*) FROM {table} WHERE status = 'process'").fetchone()[0]
        if claimed != count:
            raise RuntimeError(f"raw claim took {claimed} of {count} rows")
        return count / elapsed


def server_facts() -> dict[str, str]:
    """Return the PostgreSQL version and the settings that decide commit speed."""
    with connect() as conn:
        facts = {"postgres": conn.execute("SHOW server_version").fetchone()[0]}
        for name in ("fsync", "synchronous_commit", "shared_buffers"):
            facts[name] = conn.execute(f"SHOW {name}").fetchone()[0]
        return facts
