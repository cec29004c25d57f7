"""Lazy, typed access to the ``QTASKS`` setting.

Nothing is read at import time: every attribute lookup goes to
``django.conf.settings.QTASKS`` (cached until ``setting_changed`` fires), so
``override_settings(QTASKS=...)`` works in tests.

A number outside its ``Bounds`` is never handed out: its default stands in, a warning
is logged, and the system checks (checks.py) report it. Tasks are declared while Django
loads its apps, before the checks run, so raising there would blame the first task
instead of naming the setting.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# DURATION_MAX: ten years, the longest duration a setting or option may give; INT_MIN/MAX:
# an SQL integer column's range (priorities, counters).
from .limits import DURATION_MAX, INT_MAX, INT_MIN

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bounds:
    """The numbers a setting or option accepts: finite, within ``[low, high]``, maybe whole."""

    low: float
    high: float
    integer: bool = False
    unit: str = ""

    def describe(self) -> str:
        """``"an integer from 1 to 10000"``, ``"a finite number from 0 to 315360000 seconds"``."""
        kind = "an integer" if self.integer else "a finite number"
        unit = f" {self.unit}" if self.unit else ""
        return f"{kind} from {_plain(self.low)} to {_plain(self.high)}{unit}"

    def refuses(self, value: object) -> str | None:
        """Return why ``value`` is refused (``"must be ..."``), or None if it is accepted.

        ``True`` is an ``int`` to Python, but never a number the user meant.
        """
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {self.describe()}"
        if self.integer and not isinstance(value, int):
            return f"must be {self.describe()}"
        if not math.isfinite(value) or not self.low <= value <= self.high:
            return f"must be {self.describe()}"
        return None


def _plain(number: float) -> str:
    """``315360000`` rather than ``3.1536e+08``; ``0.01`` stays."""
    return str(int(number)) if float(number).is_integer() else str(number)


#: Intervals between polls, heartbeats and sweeps: below 10 ms a worker would spin.
INTERVAL = Bounds(0.01, DURATION_MAX, unit="seconds")
#: Waits that may be zero (retry at once, stop at once, release at once).
DELAY = Bounds(0, DURATION_MAX, unit="seconds")
PRIORITY = Bounds(INT_MIN, INT_MAX, integer=True)
#: Slots of one worker process: each may hold a task process (and a database connection).
CONCURRENCY = Bounds(1, 10_000, integer=True)
#: The range of each numeric setting; checks.py reports a value outside it (E002).
SETTING_BOUNDS: dict[str, Bounds] = {
    "DEFAULT_PRIORITY": PRIORITY,
    # PostgreSQL stores no single value above 1 GB.
    "MAX_PAYLOAD_BYTES": Bounds(1, 2**30, integer=True, unit="bytes"),
    "POLL_INTERVAL": INTERVAL,
    "LEASE_TIMEOUT": INTERVAL,
    "HEARTBEAT_INTERVAL": INTERVAL,
    "RESCUE_INTERVAL": INTERVAL,
    "MAX_RESCUES": Bounds(0, INT_MAX, integer=True),
    "RETRY_BACKOFF": DELAY,
    "RETRY_BACKOFF_MAX": DELAY,
    "WORKER_CONCURRENCY": CONCURRENCY,
    "SHUTDOWN_TIMEOUT": DELAY,
    "CHILD_MAX_TASKS": Bounds(0, INT_MAX, integer=True),
    "TASK_PROCESS_IDLE_TIMEOUT": INTERVAL,
    "CANCEL_GRACE": DELAY,
    # Zero would make a plain ``qtasks_prune`` delete every finished task.
    "PRUNE_AFTER": Bounds(1, DURATION_MAX, unit="seconds"),
    "SCHEDULE_CATCH_UP_MAX": Bounds(1, 10_000, integer=True),
    "SCHEDULE_MISFIRE_GRACE": DELAY,
}


@dataclass(frozen=True, kw_only=True)
class QTasksSettings:
    """Every key of ``settings.QTASKS`` with its default."""

    APP: str = "qtasks_django.app"
    """Dotted path of the ``QueueTasks`` instance the worker serves."""
    DEFAULT_PRIORITY: int = 0
    """Priority of tasks that declare none; a lower number runs first."""
    DEFAULT_QUEUE: str = "default"
    """Queue of tasks that declare none (``@shared_task(queue="emails")`` sets one)."""
    RESULT_STATUSES_END: tuple[str, ...] = ("success", "error", "cancel")
    """Statuses that end a wait (``add_task(timeout=...)``, ``SyncResult.result``)."""
    MAX_PAYLOAD_BYTES: int = 1_000_000
    """Cap on the JSON-encoded size of a task's arguments."""
    NOTIFIER: dict[str, Any] | None = None
    """``{"BACKEND": dotted path, "OPTIONS": {...}}``; None picks by database vendor."""
    POLL_INTERVAL: float = 1.0
    """Seconds between queue polls when no notification arrives."""
    LEASE_TIMEOUT: float = 60.0
    """Seconds a claim stays valid without a heartbeat."""
    HEARTBEAT_INTERVAL: float = 10.0
    """Seconds between worker heartbeats (which renew the leases)."""
    RESCUE_INTERVAL: float = 15.0
    """Seconds between sweeps that return expired leases to the queue."""
    MAX_RESCUES: int = 3
    """A task rescued this many times ends ``error`` (poison pill)."""
    RETRY_BACKOFF: float = 1.0
    """Delay before the first retry; doubled on each further attempt."""
    RETRY_BACKOFF_MAX: float = 300.0
    """Upper bound of a retry delay."""
    RETRY_JITTER: bool = True
    """Randomise retry delays (between half and all of the computed delay)."""
    MIDDLEWARES_BEFORE: tuple[str, ...] = ()
    """Dotted paths of middlewares run before every task."""
    MIDDLEWARES_AFTER: tuple[str, ...] = ()
    """Dotted paths of middlewares run after every task."""
    DEFAULT_EXECUTOR: str = "qtasks_django.TaskExecutor"
    """Dotted path of the executor class of tasks that declare none."""
    WORKER_CONCURRENCY: int = 4
    """Default ``--concurrency`` of ``qtasks_worker``."""
    SHUTDOWN_TIMEOUT: float = 30.0
    """Default grace period for running tasks on SIGTERM/SIGINT."""
    SYNC_POOL: str = "process"
    """Where sync tasks run: ``"process"`` (forked children; ``max_time`` and a forced
    cancel kill the child, ``os._exit`` ends only that task) or ``"thread"`` (faster
    start, but an overrun thread can only be abandoned)."""
    CHILD_MAX_TASKS: int = 5000
    """A task process is replaced after this many tasks (0: never), to keep memory flat."""
    TASK_PROCESS_IDLE_TIMEOUT: float = 60.0
    """Seconds a task process may sit idle before it exits (a worker keeps one at least);
    the worker forks task processes as sync tasks need them, up to one per slot."""
    CANCEL_GRACE: float = 5.0
    """Seconds a running task has to stop by itself after a cancel before it is stopped by force."""
    PRUNE_AFTER: float = 7 * 24 * 3600.0
    """Default age in seconds past which ``qtasks_prune`` deletes finished tasks."""
    SCHEDULES: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Schedules declared in settings: name -> ``{"task": ..., "cron": ... or "interval": ...,
    "args", "kwargs", "timezone", "queue", "priority", "missed_runs"}`` (docs/schedules.md)."""
    SCHEDULE_CATCH_UP_MAX: int = 100
    """The most missed firings one schedule with ``missed_runs="all"`` makes when workers return."""
    SCHEDULE_MISFIRE_GRACE: float = 60.0
    """Seconds after its time a firing still counts as on time (``missed_runs="skip"`` runs it)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Unknown keys, kept so that system checks can name them."""
    refused: dict[str, str] = field(default_factory=dict)
    """Numbers outside their bounds, replaced by their defaults: key -> what is wrong."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> QTasksSettings:
        """Build settings from the user's dict, collecting unknown keys."""
        known = {f.name for f in fields(cls)} - {"extra", "refused"}
        values = {k: v for k, v in raw.items() if k in known}
        for key in ("RESULT_STATUSES_END", "MIDDLEWARES_BEFORE", "MIDDLEWARES_AFTER"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        refused = refused_numbers(values)
        for key in refused:
            del values[key]
        unknown = {k: v for k, v in raw.items() if k not in known}
        return cls(**values, extra=unknown, refused=refused)


def refused_numbers(raw: dict[str, Any]) -> dict[str, str]:
    """Return ``{key: "QTASKS[key] must be ..., got value"}`` for each number of ``raw`` out of bounds."""
    refused = {}
    for key, bounds in SETTING_BOUNDS.items():
        if key in raw and (why := bounds.refuses(raw[key])):
            refused[key] = f"QTASKS[{key!r}] {why}, got {raw[key]!r}"
    return refused


class _LazySettings:
    """Proxy that builds ``QTasksSettings`` on first use and after a settings change."""

    def __init__(self) -> None:
        self._cached: QTasksSettings | None = None

    def load(self) -> QTasksSettings:
        if self._cached is None:
            raw = getattr(django_settings, "QTASKS", None) or {}
            if not isinstance(raw, dict):
                raw = {}  # checks.py reports the wrong type
            self._cached = QTasksSettings.from_dict(raw)
            for problem in self._cached.refused.values():
                logger.warning("%s; using its default until it is fixed (manage.py check)", problem)
        return self._cached

    def reset(self) -> None:
        self._cached = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.load(), name)


settings = _LazySettings()


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "QTASKS":
        settings.reset()
