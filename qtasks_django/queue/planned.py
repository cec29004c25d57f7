"""One prepared statement run under planner settings that last for that statement alone.

The claims' queries have one good plan (walk a small partial index in run order and stop
at the limit), but right after a burst of enqueues, or with a backlog of limited rows,
the planner's statistics may make it sort every ready row, start parallel workers or
JIT-compile the plan (15 to 90 ms for a 1 ms query). So those statements run with the
alternatives turned off.

The settings must never outlive the statement: behind PgBouncer in transaction pooling
mode a session-level ``SET`` sent between two transactions lands on whichever server
connection the pooler picks, and would change the plans of another client's queries.
Outside a transaction the statement therefore runs as ``BEGIN; SET LOCAL ...; <it>;
COMMIT``; inside one (the caller's), as ``SET ...; <it>; RESET ...`` on the connection
the transaction holds. Either way it is one round trip (psycopg's pipeline mode), and
one transaction instead of a transaction per setting.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .cursors import kept_cursor


def fetch_planned(
    connection: Any, sql: str, params: list[Any], plan_off: dict[str, str]
) -> list[tuple[Any, ...]]:
    """Run ``sql`` (prepared) on Django's PostgreSQL ``connection`` with ``plan_off`` set; return its rows."""
    import psycopg  # an optional dependency (the "postgres" extra): only PostgreSQL gets here

    connection.ensure_connection()
    raw = connection.connection
    idle = psycopg.pq.TransactionStatus.IDLE
    # Inside Django's ``atomic`` the connection is not in autocommit, though its BEGIN
    # may not have been sent yet: then the statement belongs to that transaction.
    alone = raw.autocommit and raw.info.transaction_status == idle
    with connection.wrap_database_errors:
        setting, cursor = kept_cursor(connection, "settings"), kept_cursor(connection)
        try:
            with raw.pipeline():
                if alone:
                    setting.execute("BEGIN")
                for name, value in plan_off.items():
                    setting.execute(f"SET {'LOCAL ' if alone else ''}{name} = {value}")
                cursor.execute(sql, params, prepare=True)
                if alone:
                    setting.execute("COMMIT")
                else:
                    for name in plan_off:
                        setting.execute(f"RESET {name}")
        except BaseException:
            if alone and raw.info.transaction_status != idle:
                # The pipeline stopped at the error, before the COMMIT: end the
                # transaction it opened, or the connection stays inside it. (On a
                # broken connection this fails too; the first error is the one to raise.)
                with contextlib.suppress(psycopg.Error):
                    raw.execute("ROLLBACK")
            raise
        return cursor.fetchall() if cursor.description else []
