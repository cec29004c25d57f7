"""psycopg cursors kept for the life of their connection, which prepare the hot statements.

The hot statements (an enqueue's INSERT, a claim, a batch of finishes, the gated
claim's reads) go through psycopg's own cursor with ``prepare=True``: parsed and
planned once per connection, then only bound. A prepared claim costs about 0.7x an
unprepared one (docs/pgbouncer.md). But psycopg prepares nothing on a connection whose
``prepare_threshold`` is ``None``, Django's default, so this module gives the connection
a threshold no query reaches (``NEVER_BY_COUNT``): Django's own queries stay unprepared,
and only statements that ask for it are prepared. A database marked for transaction
pooling (``DISABLE_SERVER_SIDE_CURSORS``, Django's advice for PgBouncer) keeps ``None``:
PgBouncer before 1.21 cannot carry prepared statements between server connections.

Making a cursor builds its type adapters, which costs 25 to 45 microseconds: a third of
the client's whole work for a prepared single-row INSERT. So each connection keeps its
cursors; Django gives each thread its own connection, so a cursor is never shared
between threads.
"""

from __future__ import annotations

from typing import Any

#: The attribute of a psycopg connection that holds its cursors by role: they live and
#: die with it (a reconnection starts with none).
_KEPT = "_qtasks_cursors"
#: A ``prepare_threshold`` that only ``prepare=True`` passes (psycopg counts a query's
#: executions against it; no query is run two billion times on one connection).
NEVER_BY_COUNT = 2**31 - 1


def kept_cursor(connection: Any, role: str = "main") -> Any:
    """Return the open psycopg cursor ``role`` of Django's PostgreSQL ``connection``, connecting if needed.

    A statement's results stay on its cursor until the next one: fetch them before
    running another statement on the same role.
    """
    import psycopg  # an optional dependency (the "postgres" extra): only PostgreSQL gets here

    connection.ensure_connection()
    raw = connection.connection
    cursors: dict[str, Any] | None = getattr(raw, _KEPT, None)
    if cursors is None:
        cursors = {}
        setattr(raw, _KEPT, cursors)
        pooled = connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS", False)
        if raw.prepare_threshold is None and not pooled:
            raw.prepare_threshold = NEVER_BY_COUNT
    cursor = cursors.get(role)
    if cursor is None or cursor.closed:
        cursor = cursors[role] = psycopg.Cursor(raw)
    return cursor
