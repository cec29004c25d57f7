"""psycopg cursors kept for the life of their connection.

The hot statements (an enqueue's INSERT, a claim, a batch of finishes) go through
psycopg's own cursor, prepared and bound server-side. Making a cursor builds its type
adapters, which costs 25 to 45 microseconds: a third of the client's whole work for a
prepared single-row INSERT. So each connection keeps its cursors; Django gives each
thread its own connection, so a cursor is never shared between threads.
"""

from __future__ import annotations

from typing import Any

#: The attribute of a psycopg connection that holds its cursors by role: they live and
#: die with it (a reconnection starts with none).
_KEPT = "_qtasks_cursors"


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
    cursor = cursors.get(role)
    if cursor is None or cursor.closed:
        cursor = cursors[role] = psycopg.Cursor(raw)
    return cursor
