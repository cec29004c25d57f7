"""Inside the task processes: the zygote that forks them, and each child's serving loop.

The worker's side is ``processes.TaskProcesses``; everything here runs in a forked
process and never returns to the caller's code (the caller ends with ``os._exit``).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import threading
import traceback as traceback_lib
import warnings
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from django.db import close_old_connections, connections

from ..queue.finishes import Finishes
from ..status import TaskStatus
from ..tasks.context import current_task_uuid
from ..tasks.execution import Outcome, run_to_outcome
from ..tasks.run import TaskRun
from ..tasks.task import SyncTask

if TYPE_CHECKING:
    from ..models import TaskRecord
    from ..tasks.app import QueueTasks

logger = logging.getLogger("qtasks_django.worker")
_PR_SET_PDEATHSIG = 1


def fork_quietly() -> int:
    with warnings.catch_warnings():
        # The zygote is forked before the worker starts threads; Python warns on
        # any fork in a process that has (or had, in tests) other threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def zygote_main(sock: socket.socket, app: QueueTasks, components: dict[str, Any], *, parent: int) -> None:
    """Fork a child for each request byte; send its pid and its end of the pipe back."""
    _ignore_stop_signals()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    _die_with(parent)
    _forget_inherited_connections()
    while True:
        try:
            request = sock.recv(1)
        except OSError:
            return
        if not request:
            return  # the worker closed its end: shut down
        ours, theirs = Pipe()
        control_reader, control_writer = Pipe(duplex=False)  # stops, worker → child
        pid = fork_quietly()
        if pid == 0:
            status = 1
            try:
                sock.close()
                ours.close()
                control_writer.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # tasks may run subprocesses
                _child_main(theirs, control_reader, app, components, parent=os.getppid())
                status = 0
            finally:
                os._exit(status)
        socket.send_fds(sock, [str(pid).encode()], [ours.fileno(), control_writer.fileno()])
        for end in (ours, theirs, control_reader, control_writer):
            end.close()


def _child_main(
    conn: Connection, control: Connection, app: QueueTasks, components: dict[str, Any], *, parent: int
) -> None:
    """Serve ``run`` messages from ``conn`` until it closes; ``stop`` messages come on ``control``.

    The main thread reads its tasks itself: handing them over from a reader thread
    would cost a thread wake-up per task, most of a no-op task's cost. Stops have a
    channel and a thread of their own, as they must arrive while a task runs.
    """
    _ignore_stop_signals()
    _die_with(parent)
    _forget_inherited_connections()
    # The child drives the executor with an event loop of its own, but runs one sync
    # task at a time in this one thread: Django's guard against sharing a connection
    # between coroutines has nothing to guard here, and would refuse the task's ORM calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    stops: dict[Any, str] = {}
    current: list[TaskRun] = []
    threading.Thread(target=_read_stops, args=(control, stops, current), daemon=True).start()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        while True:
            try:
                _, record = conn.recv()
            except EOFError:
                return  # the worker closed our pipe: exit
            outcome, log_lines = _run_one(loop, app, components, record, stops, current)
            conn.send(("done", outcome, log_lines))
    except OSError:
        pass  # the worker is gone
    finally:
        connections.close_all()  # end our own sessions cleanly (the inherited ones stay untouched)


def _read_stops(control: Connection, stops: dict[Any, str], current: list[TaskRun]) -> None:
    """Record each ``stop`` (it may come just before its task) and stop the task if it runs."""
    while True:
        try:
            _, uuid, reason = control.recv()
        except (EOFError, OSError):
            return
        stops[uuid] = reason
        for run in list(current):
            if run.uuid == uuid:
                run.stop(reason)


def _run_one(
    loop: asyncio.AbstractEventLoop,
    app: QueueTasks,
    components: dict[str, Any],
    record: TaskRecord,
    stops: dict[Any, str],
    current: list[TaskRun],
) -> tuple[Outcome, list[dict[str, Any]]]:
    token = current_task_uuid.set(record.uuid)
    run: TaskRun | None = None
    try:
        schema = app.tasks[record.task_name]
        run = TaskRun(
            record=record,
            schema=schema,
            task=SyncTask(schema, owner=app),
            finishes=Finishes(),
            threads=None,
            components=components,
        )
        current.append(run)  # before the look-up: a stop arriving now finds the run there
        reason = stops.pop(record.uuid, None)
        # A child has one task at a time: any other stop is for a task that ended
        # before its request arrived. Dropped here, they do not pile up.
        stops.clear()
        if reason is not None:
            run.stop(reason)
        outcome = loop.run_until_complete(_run_and_close(run))
    except BaseException:
        outcome = Outcome(status=TaskStatus.ERROR, traceback=traceback_lib.format_exc())
    finally:
        current_task_uuid.reset(token)
        current.clear()
        close_old_connections()
    return outcome, run.ctx.log_lines if run else []


async def _run_and_close(run: TaskRun) -> Outcome:
    """Run ``run``, then close the database connections it opened.

    Under a running event loop Django keeps connections in the asyncio task's context
    (asgiref's ``Local``), not in the thread: each run starts with none, and one left
    open here would never be seen again, a leaked session per task that used the ORM.
    """
    try:
        return await run_to_outcome(run)
    finally:
        connections.close_all()


def _ignore_stop_signals() -> None:
    # Ctrl-C reaches the whole process group, and systemd sends SIGTERM to the whole
    # cgroup: the worker alone decides (drain, then release), and kills children
    # itself. If the worker dies, PR_SET_PDEATHSIG takes them down with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _die_with(parent: int) -> None:
    """Have the kernel kill this child when the worker dies, however it dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        logger.debug("PR_SET_PDEATHSIG unavailable; children rely on their pipe closing")
    if os.getppid() != parent:  # the worker died before prctl took effect
        os._exit(0)


_INHERITED: list[Any] = []


def _forget_inherited_connections() -> None:
    """Drop the worker's database connections without touching their sockets.

    The child must open its own connections; closing the inherited ones would
    end the worker's sessions. They are kept referenced so they are never
    finalised here (psycopg also checks the pid before finishing one).
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None:
            _INHERITED.append(conn.connection)
            conn.connection = None
        conn.in_atomic_block = False
        conn.savepoint_ids = []
        conn.needs_rollback = False
        conn.run_on_commit = []
