"""Stopping an async task that blocks the event loop past its ``max_time``.

``max_time`` for async tasks is a timer on the event loop, and a coroutine that
never awaits (``while True: pass``, ``time.sleep``) keeps that timer from
firing — and stalls every other async task. The worker's main thread checks
that the loop still answers; when it does not and the coroutine holding it has
run past its ``max_time``, it raises ``TaskTimeoutError`` inside that coroutine
(``PyThreadState_SetAsyncExc``). Pure-Python loops stop at once; a blocking C
call stops when it returns.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import time
from typing import TYPE_CHECKING

from ..exceptions import TaskTimeoutError

if TYPE_CHECKING:
    from ..tasks.run import TaskRun

logger = logging.getLogger("qtasks_django.worker")
#: Seconds without an answer from the loop before the watchdog looks at who holds it.
STALL = 1.0
#: Seconds between pings of an answering loop.
PING_EVERY = 0.25


class LoopBlocked(TaskTimeoutError):
    """An async task held the event loop past its ``max_time``."""

    def __init__(
        self, message: str = "Time limit exceeded: the task blocked the event loop past its max_time"
    ) -> None:
        super().__init__(message)


class LoopWatchdog:
    """Watch one event loop (in its own thread) from the worker's main thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self.loop = loop
        self.thread = thread
        self.answered = time.monotonic()
        self._asked = False
        self._interrupted: set[asyncio.Task[object]] = set()
        self.runs: dict[asyncio.Task[object], tuple[TaskRun, float]] = {}  # task → (run, started)

    def track(self, run: TaskRun) -> None:
        """Call from the run's coroutine: remember which asyncio task runs it."""
        task = asyncio.current_task()
        if task is not None:
            self.runs[task] = (run, time.monotonic())
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[object]) -> None:
        self.runs.pop(task, None)
        self._interrupted.discard(task)

    def check(self) -> None:
        """Ping the loop; if it has not answered for ``STALL`` seconds, stop an overdue blocker."""
        if not self._asked and time.monotonic() - self.answered >= PING_EVERY:
            # Not on every claim: a ping wakes the loop thread, which then competes
            # with the claim loop for the GIL just when a task should start.
            self._asked = True
            self.loop.call_soon_threadsafe(self._answer)
        if time.monotonic() - self.answered < STALL:
            return
        task = asyncio.current_task(self.loop)
        if task is None:
            return
        entry = self.runs.get(task)
        if entry is None or task in self._interrupted:
            return
        run, started = entry
        max_time = run.schema.max_time
        if max_time is None or time.monotonic() - started < max_time + STALL or run.forced_reason:
            return
        if asyncio.current_task(self.loop) is not task:
            return  # it just let go of the loop
        self._interrupted.add(task)
        logger.warning(
            "task=%s uuid=%s blocks the event loop past its max_time of %ss: interrupting it",
            run.schema.name,
            run.uuid,
            max_time,
        )
        _raise_in_thread(self.thread, LoopBlocked)

    def _answer(self) -> None:
        self.answered = time.monotonic()
        self._asked = False


def _raise_in_thread(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    ident = thread.ident
    if ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))
