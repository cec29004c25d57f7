"""Wake-ups: a thread turns the notifier's messages into wake-ups of the claim loop."""

from __future__ import annotations

import threading

from .. import notifiers


class WakeUps:
    """Listen for "enqueued", "cancel" and "schedules" messages; set ``wakeup`` (and the hint each names).

    Every listening worker hears every message. Ready tasks of a queue this worker does
    not serve wake it not at all, and only a message that may announce delayed, limited
    or rescued tasks sets ``look_hint`` (``Claimer.look``): a crowd of idle workers that
    a task wakes pays one claim each, not a claim and a look.
    """

    def __init__(
        self,
        notifier: notifiers.BaseNotifier,
        *,
        wakeup: threading.Event,
        cancel_hint: threading.Event,
        look_hint: threading.Event,
        schedule_hint: threading.Event | None = None,
        queues: list[str] | None = None,
        poll_interval: float,
    ) -> None:
        self.wakeup = wakeup
        self.cancel_hint = cancel_hint
        self.look_hint = look_hint
        self.schedule_hint = schedule_hint
        self.queues = None if queues is None else set(queues)
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
            if any([self._heard(channel, payload) for channel, payload in received]):
                self.wakeup.set()

    def _heard(self, channel: str, payload: str) -> bool:
        """Set the hint the message names; return whether it concerns this worker."""
        if channel == notifiers.CANCEL:
            self.cancel_hint.set()
        elif channel == notifiers.SCHEDULES and self.schedule_hint is not None:
            self.schedule_hint.set()
        elif channel == notifiers.ENQUEUED:
            queue = notifiers.ready_queue(payload)
            if queue is None:
                self.look_hint.set()
            elif self.queues is not None and queue not in self.queues:
                return False
        return True
