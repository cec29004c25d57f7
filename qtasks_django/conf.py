"""Lazy, typed access to the ``QTASKS`` setting.

Nothing is read at import time: every attribute lookup goes to
``django.conf.settings.QTASKS`` (cached until ``setting_changed`` fires), so
``override_settings(QTASKS=...)`` works in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver


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
    CANCEL_GRACE: float = 5.0
    """Seconds a running task has to stop by itself after a cancel before it is stopped by force."""
    PRUNE_AFTER: float = 7 * 24 * 3600.0
    """Default age in seconds past which ``qtasks_prune`` deletes finished tasks."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Unknown keys, kept so that system checks can name them."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> QTasksSettings:
        """Build settings from the user's dict, collecting unknown keys."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in raw.items() if k in known}
        for key in ("RESULT_STATUSES_END", "MIDDLEWARES_BEFORE", "MIDDLEWARES_AFTER"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        unknown = {k: v for k, v in raw.items() if k not in known}
        return cls(**values, extra=unknown)


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
