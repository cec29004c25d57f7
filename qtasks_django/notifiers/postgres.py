"""LISTEN/NOTIFY on the task database itself: no extra service needed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.db import connections

from .base import BaseListener, BaseNotifier

logger = logging.getLogger(__name__)


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


class PostgresListener(BaseListener):
    """A dedicated autocommit connection that LISTENs; reconnects after failures."""

    def __init__(self, channels: Iterable[str], *, connection_params: dict[str, Any]) -> None:
        super().__init__(channels)
        self._params = connection_params
        self._conn: Any = None
        self._failures = 0
        # Subscribe now: a waiter checks the database after this, so nothing
        # sent in between is missed.
        try:
            self._conn = self._connect()
        except Exception as exc:
            logger.warning("qtasks listener could not connect (%s); polling until it can", exc)

    def _connect(self) -> Any:
        import psycopg
        from psycopg import sql

        conn = psycopg.connect(**self._params, autocommit=True)
        for channel in self.channels:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        return conn

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        if self._closed.is_set():
            return []
        deadline = time.monotonic() + timeout
        try:
            if self._conn is None:
                self._conn = self._connect()
                self._failures = 0
            received = [(n.channel, n.payload) for n in self._conn.notifies(timeout=timeout, stop_after=1)]
            if received:  # collect whatever else is already queued, without waiting
                received += [(n.channel, n.payload) for n in self._conn.notifies(timeout=0.001)]
            return received
        except Exception as exc:
            if self._closed.is_set():  # closed under our feet during shutdown
                return []  # a dropped connection must not kill the worker
            self._failures += 1
            if self._failures in (1, 10) or self._failures % 100 == 0:
                logger.warning("qtasks listener lost its connection (%s); polling until it is back", exc)
            self._drop()
            self._closed.wait(max(0.0, deadline - time.monotonic()))
            return []

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken
                logger.debug("closing a broken listener connection failed", exc_info=True)

    def close(self) -> None:
        super().close()
        self._drop()
