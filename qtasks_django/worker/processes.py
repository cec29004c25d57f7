"""Child processes that run sync tasks, one task at a time each, started as tasks need them.

A sync function cannot be stopped from outside its thread: ``while True: pass``
ignores every request. Run in a forked child, it can be: past ``max_time`` or a
cancel's grace period the worker kills the child. A task that calls ``os._exit``
or crashes the interpreter ends only itself. Children are forked by a
single-threaded zygote (``zygote.py``, where the code that runs inside them
lives), die with the worker (``PR_SET_PDEATHSIG``), and are replaced after
``CHILD_MAX_TASKS`` tasks so memory stays flat.

How many: one from the start, another whenever a sync task has waited ``SPAWN_AFTER``
for a child while every child was that long on its task, up to one per slot; a child
idle for ``idle_timeout`` exits, down to one. Short tasks are served by one child
(each process is some 45 MB of resident memory), while tasks that block each get
their own a tenth of a second after they start.

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

#: Seconds a sync task waits for a child, with every child that long on its task, before
#: the pool forks another. Long enough that a machine busy elsewhere seldom stalls a short
#: task that long; short enough that a task behind blocking ones starts about at once
#: (the wait counts in its max_time).
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
        self._children: dict[int, TaskProcess] = {}
        # Last in, first out: the child that just finished takes the next task, so that
        # children a burst started sit idle once it is over, and retire.
        self._idle: list[TaskProcess] = []
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
            idle = {child.pid for child in self._idle}
            children, self._children, self._idle = list(self._children.values()), {}, []
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
            child.busy_since = time.monotonic()
            while not child.send("run", run.record):
                # It died while idle (the OOM killer, an operator): the task never
                # reached it, so it goes to a fresh child rather than ending in error.
                self._discard(child)
                child = run.child = None
                child = run.child = await self._acquire()
                child.busy_since = time.monotonic()
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
        """An idle child; else the next one to finish, or a new one after ``SPAWN_AFTER``."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        if not self._children and (child := self._started()) is not None:
            return child  # none at all (recycled, crashed): nothing to wait for
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[TaskProcess] = loop.create_future()
        self._waiting.append(waiter)
        timer = loop.call_later(SPAWN_AFTER, self._grow_for, waiter)
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

    def _grow_for(self, waiter: asyncio.Future[TaskProcess]) -> None:
        """``waiter`` waited ``SPAWN_AFTER``: fork a child for it if every child has been busy
        that long with its task (and a slot allows); else look again when they all will have."""
        if waiter.done() or len(self._children) >= self.size:
            return
        now = time.monotonic()
        latest = max((child.busy_since for child in self._children.values()), default=0.0)
        if latest > now - SPAWN_AFTER:  # a queue of short tasks, not a blocked one: it moves
            asyncio.get_running_loop().call_later(latest + SPAWN_AFTER - now, self._grow_for, waiter)
            return
        if (child := self._started()) is None:
            return
        with contextlib.suppress(ValueError):
            self._waiting.remove(waiter)
        waiter.set_result(child)

    def _give_back(self, child: TaskProcess) -> None:
        """Hand ``child`` to the first task waiting for one, or put it with the idle ones."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(child)
                return
        child.idle_since = time.monotonic()
        with self._lock:
            if child.pid not in self._children:
                return
            self._idle.append(child)
        if self._retiring is None and len(self._children) > 1:
            self._retiring = asyncio.get_running_loop().call_later(self.idle_timeout, self._retire_idle)

    def _serve_waiting(self) -> None:
        """A child is gone: if a task waits and a slot allows, fork its successor for it now."""
        if any(not waiter.done() for waiter in self._waiting) and len(self._children) < self.size:
            if (child := self._started()) is not None:
                self._give_back(child)

    def _retire_idle(self) -> None:
        """End the children idle for ``idle_timeout`` (least recently used first), keeping one."""
        self._retiring = None
        now = time.monotonic()
        with self._lock:
            expired = [c for c in self._idle if now - c.idle_since >= self.idle_timeout]
            expired = expired[: max(0, len(self._children) - 1)]
            for child in expired:
                self._idle.remove(child)
                self._children.pop(child.pid, None)
        for child in expired:
            child.unwatch()
            child.close_pipes()  # it exits when it reads the end of its pipe
        if len(self._children) > 1:
            oldest = min((c.idle_since for c in self._idle), default=now)
            delay = max(0.01, oldest + self.idle_timeout - now)
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
        with self._lock:
            self._children[child.pid] = child
            if idle:
                child.idle_since = time.monotonic()
                self._idle.append(child)

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
