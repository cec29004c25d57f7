"""The worker's handles on one task process (its pid, its two pipes, how it ended) and on the zygote.

The pool that starts, hands out and retires them is ``processes.TaskProcesses``; the
code that runs inside them is in ``zygote.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from .zygote import fork_quietly, zygote_main

if TYPE_CHECKING:
    from ..tasks.app import QueueTasks


class TaskProcess:
    """The worker's handle on one child: its pid, its two pipes, its task count."""

    def __init__(self, pid: int, conn: Connection, control: Connection | None = None) -> None:
        self.pid = pid
        self.conn = conn
        self.control = control
        self.tasks_done = 0
        self.idle = False  # waiting for a task (the pool's lock guards it)
        self.busy_since = self.idle_since = time.monotonic()  # when it last took a task, went idle
        self.reply: asyncio.Future[Any] | None = None  # the answer its task's slot awaits
        self.watched = False  # whether the event loop reads its answers (one reader for its life)
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

    def receive(self) -> Any:
        """Read the child's answer to its task: None if it died."""
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None

    def unwatch(self) -> None:
        """Stop reading its answers on the running event loop (before its pipe closes)."""
        if self.watched:
            self.watched = False
            with contextlib.suppress(ValueError, OSError):  # its pipe may be closed already
                asyncio.get_running_loop().remove_reader(self.conn.fileno())

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


class Zygote:
    """The single-threaded process that forks task processes, one per request byte.

    Forking the worker itself once its threads run could copy a lock one of them
    holds (SQLite's, the resolver's) into a child that would wait on it forever.
    """

    def __init__(self, process: TaskProcess, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock

    @classmethod
    def start(cls, app: QueueTasks, components: dict[str, Any]) -> Zygote:
        """Fork the zygote. Call before the worker starts any thread."""
        ours, theirs = socket.socketpair()
        pid = fork_quietly()
        if pid == 0:
            status = 1
            try:
                ours.close()
                zygote_main(theirs, app, components, parent=os.getppid())
                status = 0
            finally:
                os._exit(status)
        theirs.close()
        return cls(TaskProcess(pid, ours), ours)  # type: ignore[arg-type]

    def spawn(self) -> TaskProcess:
        """Have the zygote fork a task process (a millisecond or two); return the worker's handle on it."""
        self.sock.sendall(b"f")
        message, fds, _flags, _addr = socket.recv_fds(self.sock, 32, 2)
        if not message or len(fds) != 2:
            raise RuntimeError("no child came back")
        return TaskProcess(int(message), Connection(fds[0]), Connection(fds[1]))


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
