"""Behind a pooler: the PostgreSQL notifier's ``listen_database``, and what PgBouncer passes on."""

from __future__ import annotations

import os
import uuid

import pytest
from django.db import connection, connections

from qtasks_django.notifiers.base import BaseListener
from qtasks_django.notifiers.postgres import PostgresListener, PostgresNotifier

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_without_a_listen_database_nothing_listens_and_waiters_poll() -> None:
    notifier = PostgresNotifier(options={"listen_database": None})
    assert not notifier.supports_listen and notifier.check() == []
    with notifier.listen(["qtasks_enqueued"]) as listener:
        assert type(listener) is BaseListener and not listener.healthy
    assert "polling" in notifier.describe()


def test_listen_database_names_the_alias_the_listener_connects_through() -> None:
    notifier = PostgresNotifier(options={"listen_database": "default"})
    assert notifier.supports_listen and notifier.check() == []
    with notifier.listen(["qtasks_enqueued"]) as listener:
        assert isinstance(listener, PostgresListener) and listener.healthy


def test_a_listen_database_that_is_no_alias_is_an_error() -> None:
    [error] = PostgresNotifier(options={"listen_database": "nowhere"}).check()
    assert error.id == "qtasks_django.E014"


def test_a_listen_database_naming_another_database_is_a_warning(monkeypatch) -> None:
    monkeypatch.setitem(connections.settings, "elsewhere", {**connection.settings_dict, "NAME": "another"})
    [warning] = PostgresNotifier(options={"listen_database": "elsewhere"}).check()
    assert warning.id == "qtasks_django.W002"


@pytest.mark.pgbouncer
def test_through_pgbouncer_a_committed_notify_reaches_a_direct_listener_and_nothing_is_prepared() -> None:
    import psycopg

    pooled = f"{os.environ['QTASKS_TEST_PGBOUNCER_URL'].rstrip('/')}/{connection.settings_dict['NAME']}"
    channel = f"it_{uuid.uuid4().hex[:12]}"
    with PostgresNotifier().listen([channel]) as listener:
        # Django's default (prepare_threshold None) makes our prepare=True prepare nothing,
        # so two clients sharing the pool's server connections never see each other's.
        clients = [psycopg.connect(pooled, prepare_threshold=None) for _ in range(2)]
        try:
            for i in range(6):
                with clients[i % 2].transaction():
                    clients[i % 2].execute("SELECT pg_notify(%s, %s)", [channel, str(i)], prepare=True)
            prepared = clients[0].execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        finally:
            for client in clients:
                client.close()
        received = listener.wait(5)
        while len(received) < 6:
            more = listener.wait(1)
            if not more:
                break
            received += more
    assert [payload for _, payload in received] == [str(i) for i in range(6)]
    assert prepared == (0,)
