"""The worker's slots: which runs occupy them, and how a slot goes on to its next task.

Started from the claim loop's thread, each slot is a coroutine on the worker's event
loop. When its task ends it takes the next task claimed ahead itself, so that short
tasks do not pay two thread hops each through the claim loop.
"""

from __future__ import annotations

import asyncio
import threading
import uuid as uuid_lib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import TaskRecord
    from ..tasks.run import TaskRun
    from .cancels import CancelWatch
    from .claim_ahead import ClaimAhead
    from .runner import TaskRunner


class Slots:
    """The runs in the worker's slots, keyed by task uuid; ``len()`` is the busy slots."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        concurrency: int,
        ahead: ClaimAhead,
        cancels: CancelWatch,
        runner: TaskRunner,
        may_go_on: Callable[[], bool],
        on_change: Callable[[], None],
    ) -> None:
        """``runner`` makes and runs each slot's task; ``may_go_on`` says whether a slot
        may take another task claimed ahead; ``on_change`` wakes the claim loop."""
        self._loop = loop
        self._concurrency = concurrency
        self._ahead = ahead
        self._cancels = cancels
        self._runner = runner
        self._may_go_on = may_go_on
        self._on_change = on_change
        self._entries: dict[uuid_lib.UUID, tuple[TaskRun, Future[Any]]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[uuid_lib.UUID]:
        with self._lock:
            return iter(list(self._entries))

    def runs(self) -> dict[uuid_lib.UUID, TaskRun]:
        with self._lock:
            return {key: run for key, (run, _) in self._entries.items()}

    def entries(self) -> list[tuple[TaskRun, Future[Any]]]:
        """Every run with the future of its slot (to cancel them at shutdown)."""
        with self._lock:
            return list(self._entries.values())

    def abandon(self) -> list[uuid_lib.UUID]:
        """Stop every run at once (a shutdown past its grace period); return their uuids.

        Their outcomes are not written: the caller gives the tasks back to the queue.
        """
        entries = self.entries()
        for run, future in entries:
            run.released = True
            run.stop("worker shut down")
            future.cancel()
        return [run.uuid for run, _ in entries]

    def start(self, record: TaskRecord) -> None:
        """Run ``record`` in a new slot (claim-loop thread)."""
        try:
            run = self._runner.prepare(record)
        except Exception as exc:  # an unknown task or a malformed row ends in error; the worker goes on
            self._runner.fail(record, f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
            return
        with self._lock:  # the slot takes its entry out: put it there first
            future = asyncio.run_coroutine_threadsafe(self._serve(run), self._loop)
            self._entries[record.uuid] = (run, future)
        future.add_done_callback(lambda _f: self._on_change())

    async def _serve(self, run: TaskRun | None) -> None:
        """Run ``run``, then tasks claimed ahead, one after another in this slot."""
        try:
            while run is not None:
                await self._runner.process(run)
                run = self._next(run)
        finally:
            if run is not None:  # cancelled by a forced shutdown
                self._forget(run)

    def _next(self, done: TaskRun) -> TaskRun | None:
        """Swap the finished run for the next task claimed ahead, if this slot may take one."""
        self._cancels.forget(done.uuid)
        run = None
        with self._lock:  # one step: the slots never look empty while a task changes slots
            _, future = self._entries.pop(done.uuid, (None, None))
            if future is not None and self._may_go_on():
                for record in self._ahead.take(1):
                    try:
                        run = self._runner.prepare(record)
                    except Exception:  # failing it writes to the database: the claim loop's job
                        self._ahead.put_back(record)
                    else:
                        self._entries[run.uuid] = (run, future)
        if run is None or len(self._ahead) <= self._concurrency:
            self._on_change()  # a slot is free, or it is time to claim more ahead
        return run

    def _forget(self, run: TaskRun) -> None:
        with self._lock:
            self._entries.pop(run.uuid, None)
        self._cancels.forget(run.uuid)
