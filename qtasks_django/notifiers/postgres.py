"""LISTEN/NOTIFY on the task database itself: no extra service needed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connections

from .base import BaseNotifier, ReconnectingListener


class PostgresNotifier(BaseNotifier):
    """Send with ``pg_notify`` in the caller's transaction (delivered only on commit)."""

    supports_listen = True
    transactional = True

    def send(self, channel: str, payload: str) -> None:
        # Runs on the caller's connection and transaction: PostgreSQL holds the
        # notification until COMMIT and drops it on ROLLBACK.
        with connections[self.using].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])

    def listen(self, channels: Iterable[str]) -> PostgresListener:
        return PostgresListener(channels, connection_params=self._connection_params())

    def _connection_params(self) -> dict[str, Any]:
        params = dict(connections[self.using].get_connection_params())
        params.pop("cursor_factory", None)  # Django's server-side binding cursor is not needed here
        params.pop("context", None)
        return params


class PostgresListener(ReconnectingListener):
    """A dedicated autocommit connection that LISTENs."""

    service = "its PostgreSQL listener"

    def __init__(self, channels: Iterable[str], *, connection_params: dict[str, Any]) -> None:
        self._params = connection_params
        self._conn: Any = None
        super().__init__(channels)

    def _connect(self) -> None:
        # An optional dependency (the "postgres" extra): only a PostgreSQL notifier gets here.
        import psycopg
        from psycopg import sql

        self._conn = psycopg.connect(**self._params, autocommit=True)
        for channel in self.channels:
            self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def _receive(self, timeout: float) -> list[tuple[str, str]]:
        received = [(n.channel, n.payload) for n in self._conn.notifies(timeout=timeout, stop_after=1)]
        if received:  # collect whatever else is already queued, without waiting
            received += [(n.channel, n.payload) for n in self._conn.notifies(timeout=0.0)]
        return received

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
