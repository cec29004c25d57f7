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
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, InterfaceError, close_old_connections, connections
from django.utils import timezone

from . import notifiers, signals
from .children import TaskProcesses
from .conf import settings
from .processing import Outcome, process, record_outcome
from .registration import persist_registered_tasks
from .runs import TaskRun
from .slots import SlotThreads
from .status import TaskStatus
from .task import SyncTask

if TYPE_CHECKING:
    from .models import TaskRecord
    from .registry import QueueTasks

logger = logging.getLogger("qtasks_django.worker")


class Worker:
    """Run tasks from ``queues`` with ``concurrency`` slots until stopped."""

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
        self.running: dict[uuid_lib.UUID, tuple[TaskRun, Future[Any]]] = {}
        self.stopping = threading.Event()
        self.force = threading.Event()
        self.wakeup = threading.Event()
        self.processed = 0
        self._lock = threading.Lock()
        # Spare threads: a sync task past its max_time keeps its thread until it
        # returns, and must not starve the tasks that take its slot.
        self._slots = SlotThreads(2 * concurrency + 4)
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="qtasks-loop", daemon=True)
        self._due: dict[str, float] = {}
        self._cancel_check = threading.Event()  # a cancel notification arrived
        self._cancels: dict[uuid_lib.UUID, float] = {}  # uuid → when the grace period ends
        self._next_eta: float | None = None  # monotonic time the next delayed task is due
        self._processes = (
            TaskProcesses(
                concurrency, app=app, components=self._components(), max_tasks=settings.CHILD_MAX_TASKS
            )
            if settings.SYNC_POOL == "process" and any(not s.runs_async for s in app.tasks.values())
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
            self._processes.replenish()  # before any thread starts: the cleanest fork
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
                if self.burst and not claimed and not self.running and not self._has_ready():
                    break
                if not claimed or len(self.running) >= self.concurrency:
                    self.wakeup.wait(self._idle_wait())
                    self.wakeup.clear()
        finally:
            self.stopping.set()  # also ends the listener thread after a burst run
            listener.close()
            wake_thread.join(timeout=5)
            self._shutdown()

    def stop(self) -> None:
        """Stop claiming; a second call releases running tasks at once."""
        if self.stopping.is_set():
            self.force.set()
        self.stopping.set()
        self.wakeup.set()

    def _iteration(self) -> int:
        self._periodic("heartbeat", settings.HEARTBEAT_INTERVAL, self._heartbeat)
        self._periodic("rescue", settings.RESCUE_INTERVAL, self._rescue)
        if self._processes is not None:
            self._processes.replenish()
        if self.running:
            if self._cancel_check.is_set():
                self._cancel_check.clear()
                self._due["cancels"] = 0.0
            self._periodic("cancels", self.poll_interval, self._check_cancels)
            self._force_overdue_cancels()
        free = self.concurrency - len(self.running)
        if free <= 0:
            return 0
        records = self.queue.claim(self.id, self.queues, free)
        for record in records:
            self._start(record)
        if len(records) < free:
            due = self.queue.next_eta(self.queues)
            self._next_eta = (
                None if due is None else time.monotonic() + (due - timezone.now()).total_seconds()
            )
        return len(records)

    def _idle_wait(self) -> float:
        """Sleep until the next poll, the next delayed task or the next cancel deadline."""
        wait = self.poll_interval
        now = time.monotonic()
        for due in (self._next_eta, *self._cancels.values()):
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

    def _start(self, record: TaskRecord) -> None:
        schema = self.app.tasks.get(record.task_name)
        if schema is None:
            self._fail_unknown(record)
            return
        try:
            run = TaskRun(
                record=record,
                schema=schema,
                task=SyncTask(schema, owner=self.app),
                queue=self.queue,
                slots=self._slots,
                components=self._components(),
            )
        except Exception as exc:  # a malformed row ends in error; the worker goes on
            self._fail_row(record, f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
            return
        if signals.task_started.has_listeners():
            signals.task_started.send_robust(
                sender=record.task_name, uuid=record.uuid, attempt=record.attempt, worker_id=self.id
            )
        future = asyncio.run_coroutine_threadsafe(self._process(run), self._loop)
        with self._lock:
            self.running[record.uuid] = (run, future)
        future.add_done_callback(lambda _f, key=record.uuid: self._done(key))

    async def _process(self, run: TaskRun) -> None:
        try:
            await process(run, self._processes)
            self.processed += 1
        except asyncio.CancelledError:
            raise
        except BaseException:  # an executor or storage failure: record it, keep the worker
            logger.exception("task=%s uuid=%s could not be processed", run.schema.name, run.uuid)
            failure = Outcome(status=TaskStatus.ERROR, traceback=traceback_lib.format_exc())
            await asyncio.wrap_future(self._slots.submit(_quietly, record_outcome, run, failure))

    def _done(self, key: uuid_lib.UUID) -> None:
        with self._lock:
            self.running.pop(key, None)
            self._cancels.pop(key, None)
        self.wakeup.set()

    # -- cancels ----------------------------------------------------------------------

    def _check_cancels(self) -> None:
        """Ask each running task someone cancelled to stop; force it after the grace period."""
        with self._lock:
            uuids = [key for key in self.running if key not in self._cancels]
        for key, reason in self.queue.cancel_requests(uuids).items():
            with self._lock:
                entry = self.running.get(key)
                if entry is None:
                    continue
                self._cancels[key] = time.monotonic() + settings.CANCEL_GRACE
            logger.info("task=%s uuid=%s cancel requested: %s", entry[0].schema.name, key, reason)
            entry[0].stop(reason)

    def _force_overdue_cancels(self) -> None:
        now = time.monotonic()
        with self._lock:
            overdue = [
                self.running[key][0]
                for key, due in self._cancels.items()
                if due <= now and key in self.running
            ]
        for run in overdue:
            if not run.forced_reason:
                logger.warning(
                    "task=%s uuid=%s did not stop within %.1fs of its cancel: stopping it",
                    run.schema.name,
                    run.uuid,
                    settings.CANCEL_GRACE,
                )
                self._loop.call_soon_threadsafe(run.force, run.ctx.stop_reason or "cancelled")

    def _fail_unknown(self, record: TaskRecord) -> None:
        known = ", ".join(sorted(self.app.tasks)) or "none"
        self._fail_row(
            record,
            f"qtasks_django.exceptions.TaskNotRegistered: no task named {record.task_name!r} "
            f"in this worker (known: {known})",
        )

    def _fail_row(self, record: TaskRecord, message: str) -> None:
        self.queue.finish(record, status=TaskStatus.ERROR, traceback=message)
        logger.warning("task=%s uuid=%s status=error error=%s", record.task_name, record.uuid, message)

    def _components(self) -> dict[str, Any]:
        return {"broker": self.queue, "storage": self.queue, "worker": self, "notifier": self.notifier}

    # -- liveness -------------------------------------------------------------------

    def _register(self) -> None:
        from .models import WorkerRecord

        def register() -> None:
            WorkerRecord.objects.update_or_create(
                id=self.id,
                defaults={
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "queues": self.queues or ["*"],
                    "concurrency": self.concurrency,
                },
            )
            persist_registered_tasks(self.app, worker_id=self.id)

        while self._guarded(register, default=False) is False and not self.stopping.is_set():
            pass  # the database is down at start: keep trying until it is back or we are stopped

    def _heartbeat(self) -> None:
        from django.utils import timezone

        from .models import WorkerRecord

        WorkerRecord.objects.filter(id=self.id).update(heartbeat_at=timezone.now())
        with self._lock:
            uuids = list(self.running)
        self.queue.renew_leases(self.id, uuids)

    def _rescue(self) -> None:
        requeued, failed = self.queue.rescue()
        if requeued or failed:
            logger.warning("rescued tasks of lost workers: requeued=%d failed=%d", requeued, failed)

    def _has_ready(self) -> bool:
        from .models import TaskRecord

        return self._guarded(lambda: TaskRecord.objects.ready(self.queues).exists(), default=True)

    def _listen(self, listener: notifiers.BaseListener) -> None:
        while not self.stopping.is_set():
            received = listener.wait(self.poll_interval)
            if any(channel == notifiers.CANCEL for channel, _ in received):
                self._cancel_check.set()
            if received:
                self.wakeup.set()

    # -- shutdown ---------------------------------------------------------------

    def _shutdown(self) -> None:
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
        self._release_leftovers()
        self._mark_stopped()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()
        if self._processes is not None:
            self._processes.close()
        self._slots.close()

    def _release_leftovers(self) -> None:
        with self._lock:
            leftovers = list(self.running.values())
        if not leftovers:
            return
        for run, future in leftovers:
            run.released = True
            run.stop("worker shut down")
            future.cancel()
        released = self._guarded(lambda: self.queue.release(self.id, [run.uuid for run, _ in leftovers]), 0)
        logger.warning("released %d unfinished task(s) back to the queue", released)

    def _mark_stopped(self) -> None:
        from django.utils import timezone

        from .models import WorkerRecord

        self._guarded(lambda: WorkerRecord.objects.filter(id=self.id).update(stopped_at=timezone.now()), None)

    @property
    def has_stuck_threads(self) -> bool:
        """Whether slot threads still run abandoned sync code (the process should then exit hard)."""
        return self._slots.busy


def _quietly(func: Callable[..., Any], *args: Any) -> None:
    try:
        func(*args)
    except Exception:
        logger.exception("recording a failure failed")
