"""System check of the declared schedules: ``manage.py check`` names each bad one before a worker starts.

The same ``declared()`` a worker's sync runs, so a check passes exactly when the sync
would schedule everything. No query: the database is not the checks' business (a declared
name an admin schedule already took is logged by the sync).
"""

from __future__ import annotations

from django.core.checks import CheckMessage, Error

from ..tasks.app import get_app
from .declarations import declared

#: The id of every problem with a schedule declared in code or settings.
CHECK_ID = "qtasks_django.E013"


def schedule_errors() -> list[CheckMessage]:
    """One ``Error`` per problem of the schedules ``@task(schedule=...)`` and ``QTASKS["SCHEDULES"]`` declare."""
    try:
        app = get_app()
    except Exception:  # any broken QTASKS['APP'] (None, a bad path): E005/E006 name it
        return []  # and without an app no schedule can be checked
    _, problems = declared(app)
    return [
        Error(problem, hint="See docs/schedules.md; a worker leaves this schedule out.", id=CHECK_ID)
        for problem in problems
    ]
