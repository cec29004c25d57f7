"""Wake-ups: a thread turns the notifier's messages into wake-ups of the claim loop."""

from __future__ import annotations

import threading

from .. import notifiers


class WakeUps:
    """Listen for "enqueued" and "cancel" messages and set ``wakeup`` (and ``cancel_hint``)."""

    def __init__(
        self,
        notifier: notifiers.BaseNotifier,
        *,
        wakeup: threading.Event,
        cancel_hint: threading.Event,
        poll_interval: float,
    ) -> None:
        self.wakeup = wakeup
        self.cancel_hint = cancel_hint
        self.poll_interval = poll_interval
        self._stopped = threading.Event()
        self._listener = notifier.listen([notifiers.ENQUEUED, notifiers.CANCEL])
        self._thread = threading.Thread(target=self._listen, name="qtasks-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the listening thread runs (the worker watches it)."""
        return self._thread.is_alive()

    def close(self) -> None:
        """Stop listening (within one poll interval) and close the listener."""
        self._stopped.set()
        self._listener.close()
        self._thread.join(timeout=5)

    def _listen(self) -> None:
        while not self._stopped.is_set():
            received = self._listener.wait(self.poll_interval)
            if any(channel == notifiers.CANCEL for channel, _ in received):
                self.cancel_hint.set()
            if received:
                self.wakeup.set()
