"""Child processes that run sync tasks, one task at a time each.

A sync function cannot be stopped from outside its thread: ``while True: pass``
ignores every request. Run in a forked child, it can be: past ``max_time`` or a
cancel's grace period the worker kills the child and starts a fresh one. A task
that calls ``os._exit`` or crashes the interpreter ends only itself. Children
are forked by a single-threaded zygote (``zygote.py``, where the code that runs
inside them lives), die with the worker (``PR_SET_PDEATHSIG``), and are
replaced after ``CHILD_MAX_TASKS`` tasks so memory stays flat.

Messages (pickled over pipes): the worker sends ``("run", record)`` and the child
answers ``("done", outcome, log_lines)`` on one pipe; ``("stop", uuid, reason)`` goes
on a second one, read by a thread of the child's while the task runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ..status import TaskStatus
from ..tasks.execution import Outcome
from .zygote import fork_quietly, zygote_main

if TYPE_CHECKING:
    from ..tasks.app import QueueTasks
    from ..tasks.run import TaskRun

logger = logging.getLogger("qtasks_django.worker")


class TaskProcess:
    """The worker's handle on one child: its pid, its two pipes, its task count."""

    def __init__(self, pid: int, conn: Connection, control: Connection | None = None) -> None:
        self.pid = pid
        self.conn = conn
        self.control = control
        self.tasks_done = 0
        self.reply: asyncio.Future[Any] | None = None  # the running task's answer, set by ``on_readable``
        self.watched = False  # whether the event loop reads its answers
        self._control_lock = threading.Lock()  # the claim loop and the event loop both stop tasks

    def send(self, *message: Any) -> bool:
        """Send a message on the task pipe; return False if the child is gone."""
        return _send(self.conn, message)

    def send_stop(self, uuid: Any, reason: str) -> bool:
        """Ask the child to stop task ``uuid``, on the control pipe its stop thread reads."""
        if self.control is None:
            return False
        with self._control_lock:
            return _send(self.control, ("stop", uuid, reason))

    def on_readable(self) -> None:
        """The event loop's reader callback: hand the child's answer (None if it died) to the task."""
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            message = None
        reply = self.reply
        if reply is not None and not reply.done():
            reply.set_result(message)
        elif message is None:
            asyncio.get_running_loop().remove_reader(self.conn.fileno())  # gone while idle

    def close_pipes(self) -> None:
        self.conn.close()
        if self.control is not None:
            self.control.close()

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def reap(self, timeout: float = 5.0) -> str:
        """Wait for the child to exit; return how it ended, for a traceback."""
        self.close_pipes()
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # the zygote's child: it reaps it, we only see it gone
                if not _alive(self.pid):
                    return "ended"
                pid = 0
            if pid:
                code = os.waitstatus_to_exitcode(status)
                return (
                    f"killed by signal {signal.Signals(-code).name}"
                    if code < 0
                    else f"exited with code {code}"
                )
            if time.monotonic() > deadline:
                self.kill()
                deadline = time.monotonic() + timeout
            time.sleep(0.005)


class TaskProcesses:
    """A pool of ``size`` children; ``execute`` runs one sync task in an idle one."""

    def __init__(self, size: int, *, app: QueueTasks, components: dict[str, Any], max_tasks: int) -> None:
        self.size = size
        self.app = app
        self.components = components
        self.max_tasks = max_tasks
        self._lock = threading.Lock()
        self._children: dict[int, TaskProcess] = {}
        self._idle: list[TaskProcess] = []
        self.on_change: Any = None  # called when a child is gone (the worker then replenishes)
        self._zygote: TaskProcess | None = None

    # -- the worker's main thread ------------------------------------------------

    def start(self) -> None:
        """Fork the zygote, then the first children. Call before the worker starts any thread.

        Children are forked by the zygote, a process that never has a second thread:
        forking the worker itself once its threads run could copy a lock one of them
        holds (SQLite's, the resolver's) into a child that would wait on it forever.
        """
        ours, theirs = socket.socketpair()
        pid = fork_quietly()
        if pid == 0:
            status = 1
            try:
                ours.close()
                zygote_main(theirs, self.app, self.components, parent=os.getppid())
                status = 0
            finally:
                os._exit(status)
        theirs.close()
        self._zygote = TaskProcess(pid, ours)  # type: ignore[arg-type]
        self.replenish()

    def replenish(self) -> None:
        """Have the zygote fork children until there are ``size``. Call from the main thread only."""
        while len(self._children) < self.size:
            child = self._spawn()
            with self._lock:
                self._children[child.pid] = child
                self._idle.append(child)

    def _spawn(self) -> TaskProcess:
        zygote = self._zygote
        if zygote is None:
            raise RuntimeError("TaskProcesses.start() was not called")
        sock: socket.socket = zygote.conn  # type: ignore[assignment]
        sock.sendall(b"f")
        message, fds, _flags, _addr = socket.recv_fds(sock, 32, 2)
        if not message or len(fds) != 2:
            raise RuntimeError("the task-process zygote is gone; restart the worker")
        return TaskProcess(int(message), Connection(fds[0]), Connection(fds[1]))

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
            zygote.reap(max(0.05, deadline - time.monotonic()))

    # -- the event loop ------------------------------------------------------------

    async def execute(self, run: TaskRun) -> Outcome:
        """Run ``run`` in a child and return its outcome; a cancel here kills the child."""
        # None only while a dead child is replaced, so a cancel then kills nothing. Declared
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
        self._give_back(child)
        return outcome

    async def _acquire(self) -> TaskProcess:
        while True:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
            if self.on_change:
                self.on_change()  # a child is missing: the main thread forks one
            await asyncio.sleep(0.002)

    def _give_back(self, child: TaskProcess) -> None:
        child.tasks_done += 1
        if self.max_tasks and child.tasks_done >= self.max_tasks:
            self._discard(child)  # its pipe closes: it exits; a fresh one replaces it
            return
        with self._lock:
            if child.pid in self._children:
                self._idle.append(child)

    def _discard(self, child: TaskProcess) -> str:
        with self._lock:
            self._children.pop(child.pid, None)
        with contextlib.suppress(ValueError, OSError):  # its pipe may be closed already
            asyncio.get_running_loop().remove_reader(child.conn.fileno())
        how = child.reap()
        if self.on_change:
            self.on_change()
        return how


def _send(conn: Connection, message: tuple[Any, ...]) -> bool:
    try:
        conn.send(message)
    except (OSError, ValueError):  # the child is gone, or its pipe closed
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
