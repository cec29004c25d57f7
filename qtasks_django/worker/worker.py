"""The worker: claim ready tasks into free slots, run them, keep leases alive, stop cleanly.

The loop itself is synchronous (claims need ``atomic()``); tasks run on one
event-loop thread, and their sync parts in task processes or worker threads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid as uuid_lib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import notifiers
from ..conf import settings
from ..queue.claims import Claims
from ..queue.finishes import Finishes
from ..queue.leases import Leases
from ..queue.outages import waiting_out_outage
from ..schedules.scheduler import Scheduler
from .cancels import CancelWatch
from .claim_ahead import ClaimAhead
from .claiming import Claimer
from .liveness import Liveness
from .processes import TaskProcesses
from .runner import TaskRunner
from .schedules import REFRESH_WITH_NOTIFICATIONS, ScheduleClock
from .shutdown import shut_down
from .slots import Slots
from .threads import TaskThreads
from .wakeups import WakeUps
from .watchdog import LoopBlocked, LoopWatchdog
from .writer import OutcomeWriter

if TYPE_CHECKING:
    from ..tasks.app import QueueTasks
    from ..tasks.definition import TaskExecSchema

logger = logging.getLogger("qtasks_django.worker")


class Worker:
    """Run tasks from ``queues`` with ``concurrency`` slots until stopped.

    ``sync_pool`` (default ``QTASKS["SYNC_POOL"]``) is where sync tasks run:
    ``"process"`` forks task processes at ``run()``, which must then be called
    before the host process starts other threads; a worker embedded in a threaded
    process (a test, say) should use ``"thread"``.
    """

    def __init__(
        self,
        *,
        app: QueueTasks,
        queues: list[str] | None = None,
        concurrency: int = 4,
        shutdown_timeout: float = 30.0,
        poll_interval: float | None = None,
        burst: bool = False,
        worker_id: str | None = None,
        using: str = "default",
        sync_pool: str | None = None,
        schedules: bool = True,
    ) -> None:
        self.app = app
        self.queues = queues or None
        self.concurrency = concurrency
        self.shutdown_timeout = shutdown_timeout
        self.poll_interval = poll_interval if poll_interval is not None else settings.POLL_INTERVAL
        self.burst = burst
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid_lib.uuid4().hex[:6]}"
        self.using = using
        self.leases = Leases(using)
        self.liveness = Liveness(
            app=app, worker_id=self.id, queues=self.queues, concurrency=concurrency, leases=self.leases
        )
        self.notifier = notifiers.get_notifier(using)
        self.stopping = threading.Event()
        self.force = threading.Event()
        self.wakeup = threading.Event()
        self.failure: str | None = None  # why the worker stopped itself (it then exits non-zero)
        self._due: dict[str, float] = {}
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._serve_loop, name="qtasks-loop", daemon=True)
        self._build_slots(sync_pool)
        # Every worker fires schedules unless told not to; exactly once is the database's job.
        refresh = REFRESH_WITH_NOTIFICATIONS if self.notifier.supports_listen else self.poll_interval
        self.clock = ScheduleClock(Scheduler(app, using), refresh=refresh) if schedules else None

    def _build_slots(self, sync_pool: str | None) -> None:
        """Make the slots, what runs in them, and what fills them."""
        # Spare threads: a sync task past its max_time keeps its thread until it
        # returns, and must not starve the tasks that take its slot.
        self._threads = TaskThreads(2 * self.concurrency + 4, keep=self.concurrency)
        self._watchdog = LoopWatchdog(self._loop, self._loop_thread)
        self.cancels = CancelWatch(self.leases, self._loop)
        self.ahead = ClaimAhead(4 * self.concurrency)
        self.runner = TaskRunner(
            app=self.app,
            worker_id=self.id,
            finishes=Finishes(self.using),
            threads=self._threads,
            watchdog=self._watchdog,
            ahead=self.ahead,
            components=self._components(),
        )
        self.running = Slots(
            loop=self._loop,
            concurrency=self.concurrency,
            ahead=self.ahead,
            cancels=self.cancels,
            runner=self.runner,
            may_go_on=lambda: not self.stopping.is_set() and not self.claimer.quarantined,
            on_change=self.wakeup.set,
        )
        self.claimer = Claimer(
            claims=Claims(self.using),
            worker_id=self.id,
            queues=self.queues,
            concurrency=self.concurrency,
            ahead=self.ahead,
            slots=self.running,
        )
        pool = sync_pool or settings.SYNC_POOL
        if pool == "process" and any(not s.runs_async for s in self.app.tasks.values()):
            processes = TaskProcesses(
                self.concurrency,
                app=self.app,
                components=self._components(),
                max_tasks=settings.CHILD_MAX_TASKS,
                idle_timeout=settings.TASK_PROCESS_IDLE_TIMEOUT,
            )
            processes.on_change = self.wakeup.set
            self.runner.processes = processes

    @property
    def tasks(self) -> Mapping[str, TaskExecSchema]:
        """Name → ``TaskExecSchema`` of every task this worker can run."""
        return self.app.tasks

    @property
    def processed(self) -> int:
        """How many tasks this worker ran to an outcome."""
        return self.runner.processed

    # -- lifecycle --------------------------------------------------------------

    def run(self) -> None:
        """Serve until ``stop()`` (or, with ``burst``, until nothing is left); then shut down."""
        if self.runner.processes is not None:
            self.runner.processes.start()  # before any thread starts: the zygote must have none
        self.runner.writer = OutcomeWriter(self.runner.finishes)
        self._loop_thread.start()
        self._register()
        if self.clock is not None:
            self.guarded(self.clock.start, None)
        wakeups = WakeUps(
            self.notifier,
            wakeup=self.wakeup,
            cancel_hint=self.cancels.hint,
            look_hint=self.claimer.look_hint,
            schedule_hint=self.clock.hint if self.clock else None,
            queues=self.queues,
            poll_interval=self.poll_interval,
        )
        wakeups.start()
        try:
            while not self.stopping.is_set():
                self._watch_threads(wakeups)
                claimed = self.guarded(self._iteration, default=0)
                if self.burst and not claimed and self._idle():
                    break
                if not claimed or len(self.running) >= self.concurrency:
                    if not self.wakeup.wait(self._idle_wait()):
                        self.claimer.look_hint.set()  # a poll, or a delayed task now due
                    self.wakeup.clear()
        finally:
            self._watch_threads(wakeups)  # a burst run may end just as a thread died
            self.stopping.set()
            wakeups.close()
            shut_down(self)

    def stop(self, force: bool | None = None) -> None:
        """Stop claiming; a second call (or ``force=True``) releases running tasks at once.

        Never call it from a signal handler: it takes locks the interrupted thread may hold.
        """
        if force or (force is None and self.stopping.is_set()):
            self.force.set()
        self.stopping.set()
        self.wakeup.set()

    def _serve_loop(self) -> None:
        while True:
            try:
                self._loop.run_forever()
                return
            except LoopBlocked:  # the watchdog's interrupt landed between two task steps
                logger.warning("event loop interrupted outside a task; resuming it")

    def _iteration(self) -> int:
        self._watchdog.check()
        self._periodic("heartbeat", settings.HEARTBEAT_INTERVAL, self._heartbeat)
        self._periodic("rescue", settings.RESCUE_INTERVAL, self._rescue)
        if self.runner.processes is not None:
            self.runner.processes.check()
        if self.running:
            if self.cancels.hint.is_set():
                self.cancels.hint.clear()
                self._due["cancels"] = 0.0
            running = self.running.runs()
            self._periodic("cancels", self.poll_interval, lambda: self.cancels.check(running))
            self.cancels.force_overdue(running)
        if self.clock is not None:
            self.clock.tick()
        return self.claimer.fill()

    def _idle(self) -> bool:
        """Whether a burst run is done: nothing runs, waits, is being written or is ready."""
        if self.running or self.ahead or self._writing():
            return False
        return not self.guarded(lambda: self.claimer.claims.has_ready(self.queues), default=True)

    def _idle_wait(self) -> float:
        """Sleep until the next poll, delayed task, cancel deadline or schedule firing."""
        wait = self.poll_interval
        now = time.monotonic()
        firing = self.clock.next_deadline() if self.clock else None
        for due in (self.claimer.next_eta, self.cancels.next_deadline(), firing):
            if due is not None:
                wait = min(wait, max(0.0, due - now))
        return wait

    def _periodic(self, name: str, interval: float, func: Callable[[], None]) -> None:
        now = time.monotonic()
        if now >= self._due.get(name, 0.0):
            self._due[name] = now + interval
            func()

    def guarded(self, func: Callable[[], Any], default: Any) -> Any:
        """Call ``func``, waiting out a database outage (``default`` if stopped meanwhile)."""
        return waiting_out_outage(func, default, stopping=self.stopping, interval=self.poll_interval)

    def _watch_threads(self, wakeups: WakeUps) -> None:
        """A dead thread of our own (a bug) stops the worker: it would claim tasks it cannot end."""
        writer = self.runner.writer
        alive = {"event loop": self._loop_thread.is_alive(), "wake-up": wakeups.alive}
        dead = [
            name for name, up in {**alive, "outcome writer": not writer or writer.alive}.items() if not up
        ]
        if dead and self.failure is None:
            self.failure = f"the worker's {' and '.join(dead)} thread died"
            logger.critical("%s: releasing its tasks and exiting", self.failure)
            self.stop(force=True)

    def _components(self) -> dict[str, Any]:
        queue = self.app.queue
        return {"broker": queue, "storage": queue, "worker": self, "notifier": self.notifier}

    # -- liveness -------------------------------------------------------------------

    def _register(self) -> None:
        while self.guarded(self.liveness.register, default=False) is False and not self.stopping.is_set():
            pass  # the database is down at start: keep trying until it is back or we are stopped

    def _heartbeat(self) -> None:
        self.liveness.heartbeat([*self.running, *self.ahead.uuids()])

    def _rescue(self) -> None:
        self.liveness.rescue()
        self.claimer.look_for_suspects()

    def _writing(self) -> bool:
        # A finished run's outcome (and a retry's successor) may still be on its way.
        return self.runner.writer is not None and self.runner.writer.busy

    def stop_loop(self) -> None:
        """Stop and close the event loop (tasks on it have ended or been abandoned)."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()

    @property
    def has_stuck_threads(self) -> bool:
        """Whether worker threads still run abandoned sync code (the process should then exit hard)."""
        return self._threads.busy
