"""Child processes that run sync tasks, one task at a time each, started as tasks need them.

A sync function cannot be stopped from outside its thread: ``while True: pass``
ignores every request. Run in a forked child, it can be: past ``max_time`` or a
cancel's grace period the worker kills the child. A task that calls ``os._exit``
or crashes the interpreter ends only itself. Children are forked by a
single-threaded zygote (``zygote.py``, where the code that runs inside them
lives), die with the worker (``PR_SET_PDEATHSIG``), and are replaced after
``CHILD_MAX_TASKS`` tasks so memory stays flat.

How many: one from the start, more only for tasks that would otherwise wait behind
blocked ones. A sync task takes the oldest idle child, or waits for an older busy one
that has been on its task for less than ``SPAWN_AFTER`` (a short task, most likely);
once every child has been that long on its task, the zygote forks another, up to one
per slot. A child idle for ``idle_timeout`` exits, down to one. So a stream of short
tasks keeps to one child (each is some 45 MB of resident memory), while tasks that
block each get their own within ``SPAWN_AFTER``.

Messages (pickled over pipes): the worker sends ``("run", record)`` and the child
answers ``("done", outcome, log_lines)`` on one pipe; ``("stop", uuid, reason)`` goes
on a second one, read by a thread of the child's while the task runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ..status import TaskStatus
from ..tasks.execution import Outcome
from .task_process import TaskProcess, Zygote

if TYPE_CHECKING:
    from ..tasks.app import QueueTasks
    from ..tasks.run import TaskRun

logger = logging.getLogger("qtasks_django.worker")

#: Seconds a child must have been on its task before a sync task waiting for it is given
#: a younger one, or a new one. Long enough that a machine busy elsewhere seldom stalls a
#: short task that long; short enough that a task behind blocking ones starts about at
#: once (the wait counts in its max_time).
SPAWN_AFTER = 0.1


class TaskProcesses:
    """Task processes started on demand, at most ``size``; ``execute`` runs a sync task in one."""

    def __init__(
        self,
        size: int,
        *,
        app: QueueTasks,
        components: dict[str, Any],
        max_tasks: int,
        idle_timeout: float = 60.0,
    ) -> None:
        self.size = size
        self.app = app
        self.components = components
        self.max_tasks = max_tasks
        self.idle_timeout = idle_timeout
        self.on_change: Any = None  # wakes the worker's main thread (which then calls ``check``)
        self.broken: str | None = None  # why no child can be started any more
        self._lock = threading.Lock()
        self._children: dict[int, TaskProcess] = {}  # oldest first (``_choose`` prefers them)
        self._waiting: deque[asyncio.Future[TaskProcess]] = deque()  # tasks waiting for a child, in order
        self._retiring: asyncio.TimerHandle | None = None
        self._zygote: Zygote | None = None

    @property
    def count(self) -> int:
        """How many children there are now."""
        return len(self._children)

    # -- the worker's main thread ------------------------------------------------

    def start(self) -> None:
        """Fork the zygote (``Zygote``), then the first child. Call before the worker starts any thread."""
        self._zygote = Zygote.start(self.app, self.components)
        self._add(self._zygote.spawn())

    def check(self) -> None:
        """Raise if the zygote is gone: the worker cannot run sync tasks any more and must stop."""
        if self.broken is not None:
            raise RuntimeError(self.broken)

    def close(self, timeout: float = 5.0) -> None:
        """End every child (idle ones exit when their pipe closes, the rest are killed), then the zygote."""
        with self._lock:
            idle = {child.pid for child in self._children.values() if child.idle}
            children, self._children = list(self._children.values()), {}
        for child in children:
            if child.pid not in idle:
                child.kill()  # still running a task the worker gave up (released at shutdown)
            child.close_pipes()
        deadline = time.monotonic() + timeout
        for child in children:
            child.reap(max(0.05, deadline - time.monotonic()))
        zygote, self._zygote = self._zygote, None
        if zygote is not None:
            zygote.process.reap(max(0.05, deadline - time.monotonic()))

    # -- the event loop ------------------------------------------------------------

    async def execute(self, run: TaskRun) -> Outcome:
        """Run ``run`` in a child and return its outcome; a cancel here kills the child."""
        # None while the task waits for a child, so a cancel then kills nothing. Declared
        # apart from the assignment so that mypy knows it holds a child from here on.
        child: TaskProcess | None
        child = await self._acquire()
        run.child = child  # before the task is sent: a stop may follow at once
        try:
            while not child.send("run", run.record):
                # It died while idle (the OOM killer, an operator): the task never
                # reached it, so it goes to a fresh child rather than ending in error.
                self._discard(child)
                child = run.child = None
                child = run.child = await self._acquire()
            loop = asyncio.get_running_loop()
            # No answer can be read before this coroutine awaits: the reader runs on this loop.
            child.reply = reply = loop.create_future()
            if not child.watched:
                # Registered once for the child's life: adding and removing the reader
                # for each task would cost two system calls per task.
                loop.add_reader(child.conn.fileno(), child.on_readable)
                child.watched = True
            message = await reply
        except BaseException:  # max_time, a forced cancel or a forced shutdown
            if child is not None:
                child.kill()
                self._discard(child)
            raise
        finally:
            if child is not None:
                child.reply = None
            run.child = None
        if message is None:
            how = self._discard(child)
            return Outcome(
                status=TaskStatus.ERROR,
                traceback=(
                    f"qtasks_django.exceptions.TaskProcessDied: the process running task {run.schema.name} "
                    f"{how} (os._exit, a crash or the OOM killer); only this task is affected"
                ),
            )
        _, outcome, log_lines = message
        run.ctx.log_lines.extend(log_lines)
        child.tasks_done += 1
        if self.max_tasks and child.tasks_done >= self.max_tasks:
            self._retire(child)  # its pipe closes: it exits; the next task that needs one forks another
            self._serve_waiting()
        else:
            self._give_back(child)
        return outcome

    async def _acquire(self) -> TaskProcess:
        """The child ``_choose`` names; else a new one, now or once the busy ones are blocked."""
        child, wait = self._choose()
        if child is None and wait == 0 and len(self._children) < self.size:
            child = self._started()  # every child is blocked on its task (or there is none)
        if child is not None:
            return child
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[TaskProcess] = loop.create_future()
        self._waiting.append(waiter)
        timer = loop.call_later(wait or SPAWN_AFTER, self._look_again, waiter)
        try:
            return await waiter
        except BaseException:  # cancelled while waiting (max_time, a forced cancel, shutdown)
            if waiter.done() and not waiter.cancelled():
                self._give_back(waiter.result())  # handed over just before: the next task takes it
            with contextlib.suppress(ValueError):
                self._waiting.remove(waiter)
            raise
        finally:
            timer.cancel()

    def _choose(self) -> tuple[TaskProcess | None, float]:
        """Take the oldest idle child no older child should serve first; else say how long to wait.

        An older child busy for less than ``SPAWN_AFTER`` is likely on a short task: the
        next task waits for it rather than waking a younger one, so that a stream of
        short tasks keeps to one child and the others idle out. The wait is the time
        until that child has been ``SPAWN_AFTER`` on its task; 0 when every child is
        blocked that long (or there is none): then the task may fork one.
        """
        now = time.monotonic()
        with self._lock:
            for child in self._children.values():  # oldest first
                if child.idle:
                    child.idle, child.busy_since = False, now
                    return child, 0.0
                if child.busy_since > now - SPAWN_AFTER:
                    return None, child.busy_since + SPAWN_AFTER - now
        return None, 0.0

    def _look_again(self, waiter: asyncio.Future[TaskProcess]) -> None:
        """``waiter``'s wait is over: serve it as ``_acquire`` would, or look again later."""
        if waiter.done():
            return
        child, wait = self._choose()
        if child is None and wait == 0 and len(self._children) < self.size:
            child = self._started()
        if child is not None:
            with contextlib.suppress(ValueError):
                self._waiting.remove(waiter)
            waiter.set_result(child)
        elif wait:
            asyncio.get_running_loop().call_later(wait, self._look_again, waiter)
        # Else every child is blocked and there is one per slot: the first to finish serves it.

    def _give_back(self, child: TaskProcess) -> None:
        """Mark ``child`` idle, then serve the tasks waiting, first come first served."""
        child.idle_since = time.monotonic()
        child.idle = True
        self._serve_waiting()
        if self._retiring is None and len(self._children) > 1:
            self._retiring = asyncio.get_running_loop().call_later(self.idle_timeout, self._retire_idle)

    def _serve_waiting(self) -> None:
        """Hand children to the waiting tasks while ``_choose`` names one (or a slot allows a fork)."""
        while self._waiting:
            if self._waiting[0].done():
                self._waiting.popleft()
                continue
            child, wait = self._choose()
            if child is None and wait == 0 and len(self._children) < self.size:
                child = self._started()  # a child is gone (recycled, killed) and the rest are blocked
            if child is None:
                return  # an older child on a short task serves it soon (its timer looks again)
            self._waiting.popleft().set_result(child)

    def _retire_idle(self) -> None:
        """End the children idle for ``idle_timeout`` (youngest first), keeping one."""
        self._retiring = None
        now = time.monotonic()
        with self._lock:
            idle = [c for c in reversed(self._children.values()) if c.idle]
            expired = [c for c in idle if now - c.idle_since >= self.idle_timeout]
            expired = expired[: max(0, len(self._children) - 1)]
            for child in expired:
                del self._children[child.pid]
        for child in expired:
            child.unwatch()
            child.close_pipes()  # it exits when it reads the end of its pipe
        if len(self._children) > 1:
            waits = [c.idle_since + self.idle_timeout - now for c in idle if c not in expired]
            delay = max(0.01, min(waits, default=self.idle_timeout))
            self._retiring = asyncio.get_running_loop().call_later(delay, self._retire_idle)

    def _started(self) -> TaskProcess | None:
        """Fork a child now (a millisecond or two of this loop), busy from the start; None if none can be.

        Without a zygote the task waits on, until the worker, woken to stop, releases it.
        """
        if self.broken is not None:
            return None
        try:
            if self._zygote is None:
                raise RuntimeError("TaskProcesses.start() was not called")
            child = self._zygote.spawn()
        except (OSError, RuntimeError) as exc:
            self.broken = f"the task-process zygote is gone ({exc}); restart the worker"
            if self.on_change:
                self.on_change()  # the main thread raises it from ``check``: the worker stops
            return None
        self._add(child, idle=False)
        logger.debug("forked task process %d (%d of at most %d)", child.pid, len(self._children), self.size)
        return child

    def _add(self, child: TaskProcess, idle: bool = True) -> None:
        child.idle = idle
        with self._lock:
            self._children[child.pid] = child

    def _retire(self, child: TaskProcess) -> None:
        """Let ``child`` go without waiting for it: it exits when its pipe closes."""
        with self._lock:
            self._children.pop(child.pid, None)
        child.unwatch()
        child.close_pipes()

    def _discard(self, child: TaskProcess) -> str:
        """Forget a child that died or was killed; return how it ended."""
        with self._lock:
            self._children.pop(child.pid, None)
        child.unwatch()
        how = child.reap()
        self._serve_waiting()
        return how
