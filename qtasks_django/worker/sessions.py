"""The name a worker's database sessions carry, so an operator can count them.

Every connection of a ``qtasks_worker`` process (its threads, its listener, its
task processes, which inherit the setting when forked) reports
``application_name = "qtasks_worker <worker id>"`` to PostgreSQL, visible in
``pg_stat_activity`` and passed on by PgBouncer. A project that names its sessions
itself (``OPTIONS["application_name"]``) keeps its name.
"""

from __future__ import annotations

from django.db import connections

#: PostgreSQL keeps the first 63 bytes of an application name.
LIMIT = 63
PREFIX = "qtasks_worker "


def session_name(worker_id: str) -> str:
    """The ``application_name`` of the sessions of worker ``worker_id``."""
    return (PREFIX + worker_id).encode()[:LIMIT].decode(errors="ignore")


def name_sessions(worker_id: str) -> None:
    """Name the sessions this process opens from now on after ``worker_id``, on every PostgreSQL alias.

    Call before the worker starts: a connection already open is closed so that it
    reopens under the name (each thread's connection shares its alias's settings).
    """
    for alias in connections:
        options = connections.settings[alias].setdefault("OPTIONS", {})
        if connections[alias].vendor != "postgresql" or "application_name" in options:
            continue
        options["application_name"] = session_name(worker_id)
        connections[alias].close()
