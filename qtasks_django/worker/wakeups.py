"""Wake-ups: a thread turns the notifier's messages into wake-ups of the claim loop."""

from __future__ import annotations

import threading

from .. import notifiers


class WakeUps:
    """Listen for "enqueued", "cancel" and "schedules" messages; set ``wakeup`` (and the hint each names)."""

    def __init__(
        self,
        notifier: notifiers.BaseNotifier,
        *,
        wakeup: threading.Event,
        cancel_hint: threading.Event,
        schedule_hint: threading.Event | None = None,
        poll_interval: float,
    ) -> None:
        self.wakeup = wakeup
        self.cancel_hint = cancel_hint
        self.schedule_hint = schedule_hint
        self.poll_interval = poll_interval
        self._stopped = threading.Event()
        channels = [notifiers.ENQUEUED, notifiers.CANCEL]
        if schedule_hint is not None:
            channels.append(notifiers.SCHEDULES)
        self._listener = notifier.listen(channels)
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
            channels = {channel for channel, _ in received}
            if notifiers.CANCEL in channels:
                self.cancel_hint.set()
            if notifiers.SCHEDULES in channels and self.schedule_hint is not None:
                self.schedule_hint.set()
            if received:
                self.wakeup.set()
