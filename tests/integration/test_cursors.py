"""Kept psycopg cursors: one per connection and role, never outliving the connection."""

from __future__ import annotations

import pytest
from django.db import connection

from qtasks_django.queue.cursors import kept_cursor


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_keeps_one_cursor_per_role() -> None:
    main = kept_cursor(connection)

    assert kept_cursor(connection) is main
    assert kept_cursor(connection, "settings") is not main
    main.execute("SELECT 1")
    assert main.fetchall() == [(1,)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_new_connection_gets_new_cursors() -> None:
    before = kept_cursor(connection)
    connection.close()

    after = kept_cursor(connection)  # connects again

    assert after is not before
    assert after.connection is connection.connection
    after.execute("SELECT 2")
    assert after.fetchall() == [(2,)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_closed_cursor_is_replaced() -> None:
    first = kept_cursor(connection)
    first.close()

    second = kept_cursor(connection)

    assert second is not first and not second.closed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_kept_cursor_prepares_what_asks_for_it_and_nothing_else() -> None:
    from qtasks_django.queue.cursors import NEVER_BY_COUNT

    if connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        pytest.skip("a database behind a transaction pooler keeps psycopg's prepare_threshold=None")
    cursor = kept_cursor(connection)
    cursor.execute("SELECT %s::int + 0", [1], prepare=True)
    for _ in range(10):  # Django's own queries: never prepared, however often they run
        with connection.cursor() as django_cursor:
            django_cursor.execute("SELECT 1 + 0")

    assert connection.connection.prepare_threshold == NEVER_BY_COUNT
    with connection.cursor() as django_cursor:
        django_cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in django_cursor.fetchall()]
    assert prepared == ["SELECT $1::int + 0"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_database_marked_for_transaction_pooling_prepares_nothing() -> None:
    connection.close()
    marked = connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS", False)
    connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
    try:
        cursor = kept_cursor(connection)
        cursor.execute("SELECT %s::int + 0", [1], prepare=True)
        with connection.cursor() as django_cursor:
            django_cursor.execute("SELECT count(*) FROM pg_prepared_statements")
            assert django_cursor.fetchone() == (0,)
        assert connection.connection.prepare_threshold is None
    finally:
        connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = marked
        connection.close()
