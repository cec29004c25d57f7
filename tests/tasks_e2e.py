"""Tasks only the end-to-end tier (tests/e2e/) runs in a real ``qtasks_worker`` process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from qtasks_django import app

__all__ = ["e2e_in_queue_a", "e2e_in_queue_b", "e2e_kills_its_worker", "e2e_long_first_run", "e2e_span"]

#: Set only in the environment of the worker subprocesses tests/e2e starts, so that
#: ``e2e_kills_its_worker`` can never take down pytest or an in-process worker.
KILL_SWITCH = "QTASKS_E2E_TASKS_MAY_KILL_THEIR_WORKER"


@app.task
def e2e_span(seconds):
    """Sleep ``seconds`` and report when, by the worker's own clock, the function ran."""
    start = time.time()
    time.sleep(seconds)
    return {"start": start, "end": time.time(), "pid": os.getpid()}


@app.task
def e2e_long_first_run(marker):
    """Sleep 30 s on the first run (leaving ``marker`` behind), return at once on any later run."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        time.sleep(30)
        return "first run"
    return f"rerun after pid {path.read_text()}"


@app.task(queue="e2e_a")
def e2e_in_queue_a(x):
    return f"a:{x}"


@app.task(queue="e2e_b")
def e2e_in_queue_b(x):
    return f"b:{x}"


@app.task
async def e2e_kills_its_worker():
    """A poison pill: SIGKILL the worker process running it (only in an e2e worker subprocess).

    Async, because async tasks run in the worker process itself; a sync task runs in a
    child process, whose death ends only that task.
    """
    if os.environ.get(KILL_SWITCH) != "1":
        raise RuntimeError(f"e2e_kills_its_worker runs only in a worker started with {KILL_SWITCH}=1")
    os.kill(os.getpid(), signal.SIGKILL)
    await asyncio.sleep(30)  # SIGKILL is not delivered synchronously
