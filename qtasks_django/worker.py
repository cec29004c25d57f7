"""The worker: claim ready tasks into free slots, run them, keep leases alive, stop cleanly.

The loop itself is synchronous (claims need ``atomic()``); tasks run on one
event-loop thread, and their sync parts on a pool of slot threads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import traceback as traceback_lib
import uuid as uuid_lib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, InterfaceError, close_old_connections, connections
from django.utils import timezone

from . import notifiers, presence, signals
from .cancels import CancelWatch
from .children import TaskProcesses
from .claim_ahead import ClaimAhead
from .conf import settings
from .exceptions import TaskNotRegistered
from .finishing import OutcomeWriter
from .processing import Outcome, process, record_outcome
from .running_tasks import RunningTasks
from .runs import TaskRun
from .slots import SlotThreads
from .status import TaskStatus
from .task import SyncTask
from .watchdog import LoopBlocked, LoopWatchdog

if TYPE_CHECKING:
    from .models import TaskRecord
    from .registry import QueueTasks

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
    ) -> None:
        self.app = app
        self.queues = queues or None
        self.concurrency = concurrency
        self.shutdown_timeout = shutdown_timeout
        self.poll_interval = poll_interval if poll_interval is not None else settings.POLL_INTERVAL
        self.burst = burst
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid_lib.uuid4().hex[:6]}"
        self.queue = app.queue
        self.notifier = notifiers.get_notifier(using)
        self.stopping = threading.Event()
        self.force = threading.Event()
        self.wakeup = threading.Event()
        self.processed = 0
        # Spare threads: a sync task past its max_time keeps its thread until it
        # returns, and must not starve the tasks that take its slot.
        self._slots = SlotThreads(2 * concurrency + 4)
        self._writer: OutcomeWriter | None = None  # started with the worker
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._serve_loop, name="qtasks-loop", daemon=True)
        self._watchdog = LoopWatchdog(self._loop, self._loop_thread)
        self._due: dict[str, float] = {}
        self.cancels = CancelWatch(self.queue, self._loop)
        self._next_eta: float | None = None  # monotonic time the next delayed task is due
        self.ahead = ClaimAhead(4 * concurrency)
        self._suspects = False  # a rescued task waits to be run alone
        self._quarantined = False  # one runs now: claim nothing else
        self.running = RunningTasks(
            loop=self._loop,
            concurrency=concurrency,
            ahead=self.ahead,
            cancels=self.cancels,
            prepare=self._prepare,
            process=self._process,
            fail=self._fail_row,
            may_go_on=lambda: not self.stopping.is_set() and not self._quarantined,
            on_change=self.wakeup.set,
        )
        self._processes = (
            TaskProcesses(
                concurrency, app=app, components=self._components(), max_tasks=settings.CHILD_MAX_TASKS
            )
            if (sync_pool or settings.SYNC_POOL) == "process"
            and any(not s.runs_async for s in app.tasks.values())
            else None
        )
        if self._processes is not None:
            self._processes.on_change = self.wakeup.set

    @property
    def tasks(self) -> Any:
        """Name → ``TaskExecSchema`` of every task this worker can run."""
        return self.app.tasks

    # -- lifecycle --------------------------------------------------------------

    def run(self) -> None:
        """Serve until ``stop()`` (or, with ``burst``, until nothing is left); then shut down."""
        if self._processes is not None:
            self._processes.start()  # before any thread starts: the zygote must have none
        self._writer = OutcomeWriter(self.queue.using)
        self._loop_thread.start()
        self._register()
        listener = self.notifier.listen([notifiers.ENQUEUED, notifiers.CANCEL])
        wake_thread = threading.Thread(
            target=self._listen, args=(listener,), name="qtasks-listen", daemon=True
        )
        wake_thread.start()
        try:
            while not self.stopping.is_set():
                claimed = self._guarded(self._iteration, default=0)
                if (
                    self.burst
                    and not claimed
                    and not self.running
                    and not self.ahead
                    and not self._writing()
                    and not self._has_ready()
                ):
                    break
                if not claimed or len(self.running) >= self.concurrency:
                    self.wakeup.wait(self._idle_wait())
                    self.wakeup.clear()
        finally:
            self.stopping.set()  # also ends the listener thread after a burst run
            listener.close()
            wake_thread.join(timeout=5)
            self._shutdown()

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
        if self._processes is not None:
            self._processes.replenish()
        if self.running:
            if self.cancels.hint.is_set():
                self.cancels.hint.clear()
                self._due["cancels"] = 0.0
            running = self.running.runs()
            self._periodic("cancels", self.poll_interval, lambda: self.cancels.check(running))
            self.cancels.force_overdue(running)
        if (self._suspects or self._quarantined) and not self.ahead:
            return self._claim_suspect()
        free = max(0, self.concurrency - len(self.running))
        records = self.ahead.take(free)
        for record in records:  # started before claiming more: a failed claim loses none
            self.running.start(record)
        missing = free - len(records)
        # Slots go on to tasks claimed ahead by themselves; top those up before they run out.
        room = self.ahead.room() if len(self.ahead) <= self.concurrency else 0
        if not missing and not room:
            return len(records)  # every slot is busy and enough is claimed ahead
        claimed = self.queue.claim(self.id, self.queues, missing + room)
        self.ahead.put(claimed[missing:])
        for record in claimed[:missing]:
            self.running.start(record)
        if records or claimed:
            return len(records) + len(claimed)
        # Nothing was ready: look for what comes next. (Not after a claim: the queue is
        # busy then, and a task just started must get the GIL first.)
        if not self.running:
            self._suspects = self.queue.suspects_waiting(self.queues)
        due = self.queue.next_eta(self.queues)
        self._next_eta = None if due is None else time.monotonic() + (due - timezone.now()).total_seconds()
        return 0

    def _claim_suspect(self) -> int:
        """Run a rescued task alone: wait until nothing else runs, then claim one suspect."""
        if self.running:
            return 0  # drain first (and while quarantined, claim nothing else)
        self._quarantined = False
        records = self.queue.claim(self.id, self.queues, 1, suspects=True)
        if not records:
            self._suspects = False
            return 0
        self._quarantined = True
        logger.info(
            "task=%s uuid=%s was rescued before: running it alone", records[0].task_name, records[0].uuid
        )
        self.running.start(records[0])
        return 1

    def _idle_wait(self) -> float:
        """Sleep until the next poll, the next delayed task or the next cancel deadline."""
        wait = self.poll_interval
        now = time.monotonic()
        for due in (self._next_eta, self.cancels.next_deadline()):
            if due is not None:
                wait = min(wait, max(0.0, due - now))
        return wait

    def _periodic(self, name: str, interval: float, func: Callable[[], None]) -> None:
        now = time.monotonic()
        if now >= self._due.get(name, 0.0):
            self._due[name] = now + interval
            func()

    def _guarded(self, func: Callable[[], Any], default: Any) -> Any:
        """Run a database step; on an outage log, back off and let the loop retry."""
        try:
            return func()
        except (DatabaseError, InterfaceError) as exc:
            logger.warning("database unavailable (%s); retrying in %.1fs", exc, self.poll_interval)
            close_old_connections()
            for conn in connections.all(initialized_only=True):
                conn.close()
            self.stopping.wait(self.poll_interval)
            return default

    # -- running tasks ------------------------------------------------------------

    def _prepare(self, record: TaskRecord) -> TaskRun:
        """Return the run of a claimed row (no I/O: it is called on the event loop too)."""
        schema = self.app.tasks.get(record.task_name)
        if schema is None:
            known = ", ".join(sorted(self.app.tasks)) or "none"
            raise TaskNotRegistered(f"no task named {record.task_name!r} in this worker (known: {known})")
        return TaskRun(
            record=record,
            schema=schema,
            task=SyncTask(schema, owner=self.app),
            queue=self.queue,
            slots=self._slots,
            components=self._components(),
        )

    async def _process(self, run: TaskRun) -> None:
        self._watchdog.track(run)
        started = time.monotonic()
        if signals.task_started.has_listeners():  # receivers may use the ORM: not on the loop
            await run.run_sync(
                signals.task_started.send_robust,
                sender=run.schema.name,
                uuid=run.uuid,
                attempt=run.record.attempt,
                worker_id=self.id,
            )
        try:
            await process(run, self._processes, self._writer)
            self.processed += 1
            self.ahead.observe(time.monotonic() - started)
        except asyncio.CancelledError:
            raise
        except BaseException:  # an executor or storage failure: record it, keep the worker
            logger.exception("task=%s uuid=%s could not be processed", run.schema.name, run.uuid)
            failure = Outcome(status=TaskStatus.ERROR, traceback=traceback_lib.format_exc())
            await asyncio.wrap_future(self._slots.submit(_quietly, record_outcome, run, failure))

    def _fail_row(self, record: TaskRecord, message: str) -> None:
        self.queue.finish(record, status=TaskStatus.ERROR, traceback=message)
        logger.warning("task=%s uuid=%s status=error error=%s", record.task_name, record.uuid, message)

    def _components(self) -> dict[str, Any]:
        return {"broker": self.queue, "storage": self.queue, "worker": self, "notifier": self.notifier}

    # -- liveness -------------------------------------------------------------------

    def _register(self) -> None:
        while (
            self._guarded(lambda: presence.register(self), default=False) is False
            and not self.stopping.is_set()
        ):
            pass  # the database is down at start: keep trying until it is back or we are stopped

    def _heartbeat(self) -> None:
        presence.heartbeat(self, [*self.running, *self.ahead.uuids()])

    def _rescue(self) -> None:
        requeued, failed = self.queue.rescue()
        if requeued or failed:
            logger.warning("rescued tasks of lost workers: requeued=%d failed=%d", requeued, failed)
        self._suspects = self._suspects or self.queue.suspects_waiting(self.queues)

    def _writing(self) -> bool:
        # A finished run's outcome (and a retry's successor) may still be on its way.
        return self._writer is not None and self._writer.busy

    def _has_ready(self) -> bool:
        from .models import TaskRecord

        return self._guarded(lambda: TaskRecord.objects.ready(self.queues).exists(), default=True)

    def _listen(self, listener: notifiers.BaseListener) -> None:
        while not self.stopping.is_set():
            received = listener.wait(self.poll_interval)
            if any(channel == notifiers.CANCEL for channel, _ in received):
                self.cancels.hint.set()
            if received:
                self.wakeup.set()

    # -- shutdown ---------------------------------------------------------------

    def _shutdown(self) -> None:
        self._release_claimed_ahead()
        if self.running:
            logger.info(
                "stopping: waiting up to %.0fs for %d running task(s)",
                self.shutdown_timeout,
                len(self.running),
            )
        deadline = time.monotonic() + self.shutdown_timeout
        while self.running and not self.force.is_set() and time.monotonic() < deadline:
            self.wakeup.wait(0.1)
            self.wakeup.clear()
        self._release_claimed_ahead()  # a slot may have put one back meanwhile
        self._release_leftovers()
        self._mark_stopped()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()
        if self._processes is not None:
            self._processes.close()
        if self._writer is not None:
            self._writer.close()
        self._slots.close()

    def _release_claimed_ahead(self) -> None:
        # Claimed but never started: back to the queue at once, not after the grace period.
        records = self.ahead.take_all()
        if records:
            self._guarded(lambda: self.queue.release(self.id, [r.uuid for r in records]), 0)

    def _release_leftovers(self) -> None:
        leftovers = self.running.entries()
        if not leftovers:
            return
        for run, future in leftovers:
            run.released = True
            run.stop("worker shut down")
            future.cancel()
        released = self._guarded(lambda: self.queue.release(self.id, [run.uuid for run, _ in leftovers]), 0)
        logger.warning("released %d unfinished task(s) back to the queue", released)

    def _mark_stopped(self) -> None:
        self._guarded(lambda: presence.mark_stopped(self), None)

    @property
    def uses_task_processes(self) -> bool:
        return self._processes is not None

    @property
    def has_stuck_threads(self) -> bool:
        """Whether slot threads still run abandoned sync code (the process should then exit hard)."""
        return self._slots.busy


def _quietly(func: Callable[..., Any], *args: Any) -> None:
    try:
        func(*args)
    except Exception:
        logger.exception("recording a failure failed")
