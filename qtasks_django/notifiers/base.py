"""The notifier contract and the polling fallback."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from django.core.checks import CheckMessage


class BaseListener:
    """A subscription to some channels; ``wait`` returns the payloads that arrived."""

    def __init__(self, channels: Iterable[str]) -> None:
        self.channels = list(channels)
        self._closed = threading.Event()

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        """Block up to ``timeout`` seconds; return ``(channel, payload)`` pairs, maybe none.

        Never raises on connection trouble: it waits out the timeout and the caller
        polls the database, which is always correct.
        """
        self._closed.wait(timeout)
        return []

    def close(self) -> None:
        self._closed.set()

    def __enter__(self) -> BaseListener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class BaseNotifier:
    """Send and receive wake-ups. Subclasses override ``send`` and ``listen``."""

    supports_listen: bool = False
    """Whether ``listen`` delivers notifications (else waiters only poll)."""
    transactional: bool = False
    """Whether ``send`` inside a transaction is delivered only if it commits."""

    def __init__(self, *, options: dict[str, Any] | None = None, using: str = "default") -> None:
        self.options = dict(options or {})
        self.using = using

    def check(self) -> list[CheckMessage]:
        """Return system-check messages about this notifier's configuration."""
        return []

    def send(self, channel: str, payload: str) -> None:
        """Send one notification now (errors are logged, never raised)."""

    def send_on_commit(self, channel: str, payload: str) -> None:
        """Send after the current transaction commits (at once outside one)."""
        from django.db import transaction

        if self.transactional:
            self.send(channel, payload)
        else:
            transaction.on_commit(lambda: self.send(channel, payload), using=self.using)

    def listen(self, channels: Iterable[str]) -> BaseListener:
        return BaseListener(channels)

    def describe(self) -> str:
        return type(self).__name__


class PollingNotifier(BaseNotifier):
    """No notifications: workers and waiters poll the database (SQLite's default)."""
