"""LISTEN/NOTIFY on the task database itself: no extra service needed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core import checks
from django.db import connections

from .base import BaseListener, BaseNotifier, ReconnectingListener


class PostgresNotifier(BaseNotifier):
    """Send with ``pg_notify`` in the caller's transaction (delivered only on commit).

    Option ``listen_database``: the ``DATABASES`` alias listeners connect through
    (default: the queue's own). Behind a pooler in transaction mode a ``LISTEN``
    is lost as soon as its transaction ends, so name an alias that reaches the
    server directly; ``None`` means there is none, and workers and waiters poll.
    Sending needs no such thing: ``pg_notify`` is a statement of the caller's
    transaction, and the pooler passes it on like any other.
    """

    transactional = True

    @property
    def listen_alias(self) -> str | None:
        """The alias ``LISTEN`` connects through (``None``: nothing listens, everyone polls)."""
        alias: str | None = self.options.get("listen_database", self.using)
        return alias

    @property
    def supports_listen(self) -> bool:  # type: ignore[override]
        return self.listen_alias is not None

    def check(self) -> list[checks.CheckMessage]:
        alias = self.listen_alias
        if alias is None or alias == self.using:
            return []
        if not isinstance(alias, str) or alias not in connections.settings:
            return [
                checks.Error(
                    f"PostgresNotifier OPTIONS['listen_database'] = {alias!r} is not a DATABASES alias",
                    hint="Name the alias that reaches PostgreSQL directly (not through the pooler), or None.",
                    id="qtasks_django.E014",
                )
            ]
        listen, send = connections.settings[alias], connections.settings[self.using]
        if listen.get("NAME") != send.get("NAME"):
            return [
                checks.Warning(
                    f"PostgresNotifier listens through {alias!r} (database {listen.get('NAME')!r}) but "
                    f"notifies on {self.using!r} (database {send.get('NAME')!r})",
                    hint="Notifications stay in their database: both aliases must name the same one.",
                    id="qtasks_django.W002",
                )
            ]
        return []

    def send(self, channel: str, payload: str) -> None:
        # Runs on the caller's connection and transaction: PostgreSQL holds the
        # notification until COMMIT and drops it on ROLLBACK.
        with connections[self.using].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])

    def listen(self, channels: Iterable[str]) -> BaseListener:
        alias = self.listen_alias
        if alias is None:
            return BaseListener(channels)  # no direct connection: waiters poll
        return PostgresListener(channels, connection_params=_connection_params(alias))

    def describe(self) -> str:
        alias = self.listen_alias
        if alias == self.using:
            return type(self).__name__
        return (
            f"{type(self).__name__}("
            + ("no LISTEN: polling" if alias is None else f"LISTEN via {alias!r}")
            + ")"
        )


def _connection_params(alias: str) -> dict[str, Any]:
    params = dict(connections[alias].get_connection_params())
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
