"""Tasks the fault suite (tests/e2e/test_fault_*.py) runs in real ``qtasks_worker`` processes.

Every task takes a *journal* (a file path) and a *key* first, and appends one line per
event to the journal with ``O_APPEND``: ``start``, each ``step``, and ``done`` when the
body ran to completion. Appends of one short line are atomic, so several workers, a
killed worker and a task's child process can all write to one journal, and a test can
count how often each body started and finished, whatever the database says.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import signal
import time

from qtasks_django import app

from .tasks_e2e import KILL_SWITCH

__all__ = [
    "Fatal",
    "fault_async_blocks_loop",
    "fault_async_cooperative",
    "fault_async_job",
    "fault_async_raises",
    "fault_async_spins",
    "fault_cooperative",
    "fault_exits",
    "fault_job",
    "fault_kills_its_worker",
    "fault_kills_itself",
    "fault_late",
    "fault_raises",
    "fault_spin",
    "fault_steps",
    "fault_stubborn",
]

#: Set (to a journal path) in a worker's environment to journal the task signals it sends.
SIGNAL_JOURNAL = "QTASKS_FAULTS_SIGNAL_JOURNAL"

#: What ``fault_raises``/``fault_async_raises`` can raise, by name.
BASE_EXCEPTIONS = ("SystemExit", "KeyboardInterrupt", "BaseException", "GeneratorExit", "Fatal")


class Fatal(BaseException):
    """A ``BaseException`` that is neither ``Exception`` nor one Python treats specially."""


def journal(path: str, event: str, key: object, *extra: object) -> None:
    """Append ``event key pid extra...`` to the journal at ``path`` as one atomic write."""
    line = " ".join(str(part) for part in (event, key, os.getpid(), *extra)) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _require_kill_switch(name: str) -> None:
    # These tasks end the process they run in: never let them run inside pytest.
    if os.environ.get(KILL_SWITCH) != "1":
        raise RuntimeError(f"{name} runs only in a worker started with {KILL_SWITCH}=1")


@app.task
def fault_job(path, key, seconds=0.0):
    """A well-behaved sync task: start, sleep ``seconds``, done; returns ``key``."""
    journal(path, "start", key)
    if seconds:
        time.sleep(seconds)
    journal(path, "done", key)
    return key


@app.task
async def fault_async_job(path, key, seconds=0.0):
    """The async twin of ``fault_job``."""
    journal(path, "start", key)
    if seconds:
        await asyncio.sleep(seconds)
    journal(path, "done", key)
    return key


@app.task(echo=True)
def fault_cooperative(self, path, key, seconds):
    """Sleep ``seconds`` in short ``ctx.sleep`` steps, so a cancel or shutdown stops it at once."""
    journal(path, "start", key)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        self.ctx.sleep(0.05)
    journal(path, "done", key)
    return key


@app.task(echo=True)
async def fault_async_cooperative(self, path, key, seconds):
    """The async twin of ``fault_cooperative``."""
    journal(path, "start", key)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await self.ctx.sleep(0.05)
    journal(path, "done", key)
    return key


@app.task
def fault_stubborn(path, key, seconds):
    """Ignore every request to stop: one long ``time.sleep``; only force ends it early."""
    journal(path, "start", key)
    time.sleep(seconds)
    journal(path, "done", key)
    return key


def _step_handler(value):
    return value


@app.task(generate_handler=_step_handler)
def fault_steps(path, key, steps, pause):
    """A generator: ``steps`` progress items ``pause`` seconds apart, each journalled."""
    journal(path, "start", key)
    for step in range(steps):
        time.sleep(pause)
        journal(path, "step", key, step)
        yield step
    journal(path, "done", key)
    return key


@app.task(max_time=1)
def fault_spin(path, key):
    """Hang in pure Python bytecode (``while True: pass``) past its 1 s ``max_time``."""
    journal(path, "start", key)
    while True:
        pass


@app.task(max_time=1)
def fault_late(path, key, seconds):
    """Sleep ``seconds`` past its 1 s ``max_time``; ``done`` in the journal means it was not stopped."""
    journal(path, "start", key)
    time.sleep(seconds)
    journal(path, "done", key)
    return key


@app.task(max_time=1)
async def fault_async_blocks_loop(path, key, seconds):
    """An async task that blocks its event loop with a sync sleep, past its 1 s ``max_time``."""
    journal(path, "start", key)
    time.sleep(seconds)
    journal(path, "done", key)
    return key


@app.task(max_time=1)
async def fault_async_spins(path, key, seconds):
    """An async task that holds its event loop in a pure-Python loop past its 1 s ``max_time``."""
    journal(path, "start", key)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    journal(path, "done", key)
    return key


@app.task
def fault_exits(path, key, code):
    """End the process the body runs in with ``os._exit(code)``: no cleanup, no exception."""
    _require_kill_switch("fault_exits")
    journal(path, "start", key)
    os._exit(code)


@app.task
def fault_kills_itself(path, key):
    """SIGKILL the process the body runs in."""
    _require_kill_switch("fault_kills_itself")
    journal(path, "start", key)
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(30)  # SIGKILL is not delivered synchronously


@app.task
def fault_kills_its_worker(path, key):
    """A poison pill: SIGKILL the whole process group it runs in, its worker included (an OOM kill)."""
    _require_kill_switch("fault_kills_its_worker")
    journal(path, "start", key)
    os.killpg(os.getpgrp(), signal.SIGKILL)
    time.sleep(30)  # SIGKILL is not delivered synchronously


def _raise(kind: str) -> None:
    if kind == "Fatal":
        raise Fatal("fatal")
    if kind in BASE_EXCEPTIONS:
        raise getattr(builtins, kind)
    raise ValueError(f"unknown kind {kind!r}; one of {BASE_EXCEPTIONS}")


@app.task
def fault_raises(path, key, kind):
    """Raise the ``BaseException`` named ``kind`` (see ``BASE_EXCEPTIONS``)."""
    journal(path, "start", key)
    _raise(kind)


@app.task
async def fault_async_raises(path, key, kind):
    """Raise the ``BaseException`` named ``kind`` from a coroutine."""
    journal(path, "start", key)
    await asyncio.sleep(0)
    _raise(kind)


def _journal_signal(signal_name: str):
    def receiver(sender, uuid, **kwargs):
        journal(os.environ[SIGNAL_JOURNAL], signal_name, sender, uuid, kwargs.get("status", ""))

    return receiver


def _connect_signal_journal() -> None:
    from qtasks_django import signals

    for name in ("task_enqueued", "task_started", "task_retried", "task_finished"):
        getattr(signals, name).connect(
            _journal_signal(name), weak=False, dispatch_uid=f"tests.tasks_faults.{name}"
        )


# Only in worker subprocesses a fault test starts with this variable: elsewhere no
# receiver is connected, so no other test pays for (or sees) them.
if os.environ.get(SIGNAL_JOURNAL):
    _connect_signal_journal()
