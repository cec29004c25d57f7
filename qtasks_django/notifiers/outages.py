"""Outages of a wake-up service, logged twice: when they start and when they end.

A worker publishes a wake-up per finished task; while the service is down, a warning per
message would bury the log (700 lines in one test). The first failure is a warning, the
next ones are counted (and logged at DEBUG), and the first success after them says how
long the outage lasted and how many messages were lost. Notifiers are built per use
(``get_notifier``), so the state lives here, one ``Outage`` per service address.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger(__name__)


class Outage:
    """Whether sending to one service has been failing, since when, and how many messages were lost."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._since: float | None = None
        self._lost = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        """Count one message lost; warn if it starts an outage."""
        with self._lock:
            starts = self._since is None
            if starts:
                self._since = time.monotonic()
            self._lost += 1
        if starts:
            logger.warning(
                "qtasks could not publish to %s (%s); workers will poll until it is back "
                "(further failures are counted, not logged)",
                self.service,
                exc,
            )
        else:
            logger.debug("qtasks could not publish to %s either (%s)", self.service, exc)

    def succeeded(self) -> None:
        """End an outage, if one is going on, with one line saying what it cost."""
        if self._since is None:  # the common case, without taking the lock
            return
        with self._lock:
            if self._since is None:
                return
            seconds, lost = time.monotonic() - self._since, self._lost
            self._since, self._lost = None, 0
        logger.info(
            "%s reachable again after %.1f s; %d message(s) were not published in that time",
            self.service,
            seconds,
            lost,
        )


_outages: dict[str, Outage] = {}
_outages_lock = threading.Lock()


def outage_of(service: str) -> Outage:
    """The one ``Outage`` of ``service`` (e.g. ``"Redis at redis://127.0.0.1:6379/0"``) in this process."""
    with _outages_lock:
        return _outages.setdefault(service, Outage(service))
