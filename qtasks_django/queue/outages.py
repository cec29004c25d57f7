"""Riding out a short database outage (a restart, dropped connections)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import InterfaceError, InternalError, OperationalError, close_old_connections, connections

T = TypeVar("T")
logger = logging.getLogger("qtasks_django.worker")

#: What "the database is unavailable" looks like: a connection refused or lost, a server
#: shutting down, a transaction aborted by a dropped connection. Other errors (a value too
#: long, a NUL, a constraint) are the database refusing what it was sent: retrying cannot
#: help, so they are never waited out as if they were an outage.
UNAVAILABLE = (OperationalError, InterfaceError, InternalError)
#: Tries before an outage is given up on (about 30 s in all, the delay doubling from 0.25 s).
ATTEMPTS = 8


def retrying_db_errors(func: Callable[..., T], *args: Any, attempts: int = ATTEMPTS) -> T:
    """Call ``func``, retrying through a short database outage.

    If the database stays away, the exception propagates: a task being finished then
    stays in ``process`` until its lease expires and it is rescued (at-least-once,
    never lost). Other database errors (a value the database refuses, say) are not
    retried: the caller records them as the task's error.
    """
    delay = 0.25
    for attempt in range(attempts):
        try:
            return func(*args)
        except UNAVAILABLE:
            if attempt == attempts - 1:
                raise
            for conn in connections.all(initialized_only=True):
                conn.close()
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable: the last attempt returns or raises")


def waiting_out_outage(func: Callable[[], T], default: T, *, stopping: threading.Event, interval: float) -> T:
    """Call ``func``; if the database is unavailable, log, wait ``interval`` and return ``default``.

    The worker's loop steps go through this, so the loop retries them after an outage.
    Anything else the database raises propagates and stops the worker.
    """
    try:
        return func()
    except UNAVAILABLE as exc:
        logger.warning("database unavailable (%s); retrying in %.1fs", exc, interval)
        close_old_connections()
        for conn in connections.all(initialized_only=True):
            conn.close()
        stopping.wait(interval)
        return default
