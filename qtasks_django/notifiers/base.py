"""The notifier contract and the polling fallback."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.core.checks import CheckMessage
from django.db import transaction

logger = logging.getLogger(__name__)


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

    @property
    def healthy(self) -> bool:
        """Whether notifications can arrive now (else callers should poll)."""
        return False

    def close(self) -> None:
        self._closed.set()

    def __enter__(self) -> BaseListener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ReconnectingListener(BaseListener):
    """A listener over a connection that may drop: it reconnects on the next wait.

    Subclasses implement ``_connect`` (open and subscribe), ``_receive`` and ``_drop``.
    """

    service = "the notifier"

    def __init__(self, channels: Iterable[str]) -> None:
        super().__init__(channels)
        self._connected = False
        self._failures = 0
        # Subscribe now: a waiter checks the database after this, so nothing
        # sent in between is missed.
        try:
            self._open()
        except Exception as exc:
            self._lost(exc)

    @property
    def healthy(self) -> bool:
        return self._connected and not self._closed.is_set()

    def _connect(self) -> None:
        raise NotImplementedError

    def _receive(self, timeout: float) -> list[tuple[str, str]]:
        raise NotImplementedError

    def _drop(self) -> None:
        raise NotImplementedError

    def _open(self) -> None:
        self._connect()
        self._connected = True
        self._failures = 0

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        if self._closed.is_set():
            return []
        deadline = time.monotonic() + timeout
        try:
            if not self._connected:
                self._open()
            return self._receive(timeout)
        except Exception as exc:  # a dropped connection must not kill the worker
            if self._closed.is_set():  # closed under our feet during shutdown
                return []
            self._lost(exc)
            self._closed.wait(max(0.0, deadline - time.monotonic()))
            return []

    def _lost(self, exc: Exception) -> None:
        self._failures += 1
        if self._failures in (1, 10) or self._failures % 100 == 0:
            logger.warning("qtasks lost %s (%s); polling the database until it is back", self.service, exc)
        self._connected = False
        try:
            self._drop()
        except Exception:  # already broken
            logger.debug("closing a broken %s connection failed", self.service, exc_info=True)

    def close(self) -> None:
        super().close()
        self._connected = False
        try:
            self._drop()
        except Exception:
            logger.debug("closing %s failed", self.service, exc_info=True)


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
