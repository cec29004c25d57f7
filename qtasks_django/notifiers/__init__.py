"""Wake-up notifications: an accelerator, never the record.

The database stays the source of truth; a lost notification only delays work
until the next poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connections
from django.utils.module_loading import import_string

from ..conf import settings

if TYPE_CHECKING:
    from .base import BaseNotifier

ENQUEUED = "qtasks_enqueued"
FINISHED = "qtasks_finished"
CANCEL = "qtasks_cancel"
#: A schedule was created, changed or deleted: workers read when the next firing is.
SCHEDULES = "qtasks_schedules"

#: Prefix of an "enqueued" payload naming tasks that are ready now and behind no limit
#: (``ready_payload``); any other payload (a queue name, ``"*"``) may announce delayed,
#: limited or rescued tasks. A worker whose claim comes back empty after only "ready"
#: payloads knows another worker took those tasks, and that nothing else changed.
READY_PREFIX = "ready:"


def ready_payload(queue: str) -> str:
    """The "enqueued" payload of ready tasks, behind no limit, in ``queue``."""
    return READY_PREFIX + queue


def ready_queue(payload: str) -> str | None:
    """The queue a ``ready_payload`` names; ``None`` for any other payload."""
    return payload[len(READY_PREFIX) :] if payload.startswith(READY_PREFIX) else None


_VENDOR_DEFAULTS = {"postgresql": "qtasks_django.notifiers.postgres.PostgresNotifier"}
_POLLING = "qtasks_django.notifiers.base.PollingNotifier"


def backend_path(alias: str = "default") -> str:
    """Return the configured notifier class path, or the default for the database vendor."""
    if settings.NOTIFIER:
        return settings.NOTIFIER["BACKEND"]
    return _VENDOR_DEFAULTS.get(connections[alias].vendor, _POLLING)


def get_notifier(alias: str = "default") -> BaseNotifier:
    """Build the configured notifier (cheap: connections are opened on use)."""
    options = (settings.NOTIFIER or {}).get("OPTIONS") or {}
    if not isinstance(options, dict):
        raise TypeError(f"QTASKS['NOTIFIER']['OPTIONS'] must be a dict, got {options!r}")
    return import_string(backend_path(alias))(options=options, using=alias)
