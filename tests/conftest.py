"""Suite-wide pytest configuration.

* Tests under ``tests/unit/``, ``tests/integration/``, ``tests/e2e/`` and ``tests/browser/``
  get that tier's marker, so ``-m "not e2e"`` works without marking every test by hand.
* Tests marked ``redis``, ``postgres`` or ``pgbouncer`` need that server (``pgbouncer``: the
  PgBouncer scripts/test.sh starts in transaction mode, at ``QTASKS_TEST_PGBOUNCER_URL``). Locally they are skipped when it
  is missing; when the ``CI`` environment variable is set they fail instead, so a broken
  CI service can never turn into a quietly green run of skips. The browser tier does the
  same for Playwright and Chromium (tests/browser/conftest.py).
* After an ``async def`` test, the database connection that Django's async ORM opened in
  asgiref's sync thread is closed, or PostgreSQL refuses to drop the test database.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "e2e", "browser")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            parts = Path(item.path).resolve().relative_to(TESTS_DIR).parts
        except ValueError:
            continue
        if len(parts) > 1 and parts[0] in TIERS:
            item.add_marker(parts[0])


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("redis") and (problem := _redis_problem()):
        _missing_service(problem)
    if item.get_closest_marker("postgres") and (problem := _postgres_problem()):
        _missing_service(problem)
    if item.get_closest_marker("pgbouncer") and (problem := _pgbouncer_problem()):
        _missing_service(problem)


@pytest.fixture(autouse=True)
def _close_async_orm_connections(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not inspect.iscoroutinefunction(getattr(request, "function", None)):
        return
    from asgiref.sync import sync_to_async
    from django.db import connections

    # Outside async_to_sync, thread-sensitive calls all run in asgiref's one sync thread,
    # so this closes exactly the connections the test's awaits opened there.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(sync_to_async(connections.close_all)())
    finally:
        loop.close()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _missing_service(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI is set: a missing service fails the test)", pytrace=False)
    pytest.skip(reason)


@cache
def _redis_problem() -> str | None:
    """Why Redis cannot be used, or None when ``REDIS_URL`` answers a PING."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return "REDIS_URL is not set"
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"Redis at {url} does not answer: {exc}"
    finally:
        client.close()
    return None


def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when the default database is PostgreSQL."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return f"the database is {connection.vendor}, not PostgreSQL (set DATABASE_URL=postgres://...)"
    return None


@cache
def _pgbouncer_problem() -> str | None:
    """Why PgBouncer cannot be used, or None when ``QTASKS_TEST_PGBOUNCER_URL`` answers."""
    url = os.environ.get("QTASKS_TEST_PGBOUNCER_URL")
    if not url:
        return "QTASKS_TEST_PGBOUNCER_URL is not set (scripts/test.sh starts a PgBouncer and sets it)"
    import psycopg

    try:
        psycopg.connect(f"{url.rstrip('/')}/postgres", connect_timeout=2, prepare_threshold=None).close()
    except psycopg.Error as exc:
        return f"PgBouncer at {url} does not answer: {exc}"
    return None
