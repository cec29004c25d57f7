"""Riding out a short database outage (a restart, dropped connections)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connections

T = TypeVar("T")
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
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            for conn in connections.all(initialized_only=True):
                conn.close()
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable: the last attempt returns or raises")
