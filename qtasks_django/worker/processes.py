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
        self._waiting: deque[tuple[TaskRun, asyncio.Future[Any]]] = deque()  # tasks in line for a child
        self._looking: asyncio.TimerHandle | None = None  # when the first in line may take a younger child
        self._retiring: asyncio.TimerHandle | None = None
        self._zygote: Zygote | None = None

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
        """Run ``run`` in a child and return its outcome; a cancel here kills the child.

        The task waits in line until ``_serve_waiting`` sends it to a child (``run.child``):
        at once, or as soon as a child's answer to its previous task is read, before that
        task's slot even resumes, so that one child serves several slots back to back.
        """
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((run, reply))
        self._serve_waiting()
        try:
            message = await reply
        except BaseException:  # max_time, a forced cancel or a forced shutdown
            child = run.child
            if isinstance(child, TaskProcess):
                if child.reply is reply:  # it runs there (answered, the child may serve another now)
                    child.kill()
                    self._discard(child)
            else:  # still in line
                with contextlib.suppress(ValueError):
                    self._waiting.remove((run, reply))
            raise
        finally:
            child, run.child = run.child, None
        if message is None:
            how = child.reap() if isinstance(child, TaskProcess) else "ended"
            return Outcome(
                status=TaskStatus.ERROR,
                traceback=(
                    f"qtasks_django.exceptions.TaskProcessDied: the process running task {run.schema.name} "
                    f"{how} (os._exit, a crash or the OOM killer); only this task is affected"
                ),
            )
        _, outcome, log_lines = message
        run.ctx.log_lines.extend(log_lines)
        return outcome

    def _serve_waiting(self) -> None:
        """Send the tasks in line, first come first served, to the children ``_choose`` names."""
        while self._waiting:
            run, reply = self._waiting[0]
            if reply.done():  # cancelled in line
                self._waiting.popleft()
                continue
            child, wait = self._choose()
            if child is None and wait == 0 and len(self._children) < self.size:
                child = self._started()  # every child is blocked on its task (or there is none)
            if child is None:
                if wait and self._looking is None:  # look again once that child is long on its task
                    self._looking = asyncio.get_running_loop().call_later(wait, self._look_again)
                return
            self._waiting.popleft()
            if not self._send(child, run, reply):
                self._waiting.appendleft((run, reply))

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

    def _look_again(self) -> None:
        self._looking = None
        self._serve_waiting()

    def _send(self, child: TaskProcess, run: TaskRun, reply: asyncio.Future[Any]) -> bool:
        """Send ``run`` to ``child``, whose answer goes to ``reply``; False if the child is gone."""
        run.child = child  # before the task is sent: a stop may follow at once
        if not child.send("run", run.record):
            # It died while idle (the OOM killer, an operator): the task never reached
            # it, so it goes to another child rather than ending in error.
            run.child = None
            self._discard(child, serve=False)
            return False
        if run.ctx.stop_reason:  # stopped while in line: the child learns it first thing
            child.send_stop(run.uuid, run.ctx.stop_reason)
        child.reply = reply
        if not child.watched:
            # Registered once for the child's life: adding and removing the reader
            # for each task would cost two system calls per task.
            asyncio.get_running_loop().add_reader(child.conn.fileno(), self._on_answer, child)
            child.watched = True
        return True

    def _on_answer(self, child: TaskProcess) -> None:
        """The reader of ``child``'s pipe: hand its answer (None if it died) to its task, then free it."""
        message = child.receive()
        reply, child.reply = child.reply, None
        if message is None:
            self._forget(child)  # its slot reaps it
        elif reply is not None and not reply.cancelled():  # a cancelled task's child is being killed
            child.tasks_done += 1
            if self.max_tasks and child.tasks_done >= self.max_tasks:
                self._forget(child)
                child.close_pipes()  # it exits; another is forked when one is needed
            else:
                child.idle_since, child.idle = time.monotonic(), True
        if reply is not None and not reply.done():
            reply.set_result(message)
        self._serve_waiting()
        if self._retiring is None and len(self._children) > 1:
            self._retiring = asyncio.get_running_loop().call_later(self.idle_timeout, self._retire_idle)

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

    def _forget(self, child: TaskProcess) -> None:
        with self._lock:
            self._children.pop(child.pid, None)
        child.unwatch()

    def _discard(self, child: TaskProcess, serve: bool = True) -> str:
        """Forget a child that died or was killed; return how it ended."""
        self._forget(child)
        how = child.reap()
        if serve:
            self._serve_waiting()  # a task in line may take its place
        return how
