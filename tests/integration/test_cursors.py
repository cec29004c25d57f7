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
