"""Time one measure of one peer, inside the peer's virtualenv, and print the result as JSON.

    python -m bench.peers.driver PEER enqueue COUNT            one enqueue per call
    python -m bench.peers.driver PEER bulk COUNT CHUNK         the bulk API, CHUNK per call
    python -m bench.peers.driver PEER drain COUNT PROCESSES    a COUNT backlog, PROCESSES workers
    python -m bench.peers.driver PEER latency PER_SECOND SECONDS

PEER is celery, dramatiq or procrastinate; ``bench.peers.harness`` says where it connects.
Each measure starts from an empty broker and store. The one line on stdout is the JSON
``bench.peers.client`` reads; progress and failures go to stderr.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.peers import harness
from bench.peers.harness import Harness

ROOT = Path(__file__).resolve().parent.parent.parent
HARNESSES = {
    "celery": "bench.peers.celery_app",
    "dramatiq": "bench.peers.dramatiq_app",
    "procrastinate": "bench.peers.procrastinate_app",
}
WARM_UP = 3
"""Latency tasks sent, and waited for, before the measured ones: the worker is up and warm."""


def load(peer: str) -> Harness:
    module = importlib.import_module(HARNESSES[peer])
    loaded: Harness = module.HARNESS
    return loaded


def enqueue_rate(peer: Harness, count: int) -> dict[str, Any]:
    """``count`` enqueues, one per call as a view makes them (a first one opens the connections)."""
    peer.reset()
    peer.enqueue(harness.DRAIN_TASK, -1)
    start = time.perf_counter()
    for i in range(count):
        peer.enqueue(harness.DRAIN_TASK, i)
    return {"rate": count / (time.perf_counter() - start)}


def bulk_rate(peer: Harness, count: int, chunk: int) -> dict[str, Any]:
    """``count`` enqueues in calls of ``chunk`` to the bulk API; a rate of None without one."""
    if not peer.has_bulk:
        return {"rate": None}
    peer.reset()
    peer.enqueue_many(harness.DRAIN_TASK, [-1])
    calls = [list(range(first, min(first + chunk, count))) for first in range(0, count, chunk)]
    start = time.perf_counter()
    for numbers in calls:
        peer.enqueue_many(harness.DRAIN_TASK, numbers)
    return {"rate": count / (time.perf_counter() - start)}


def drain(peer: Harness, count: int, processes: int) -> dict[str, Any]:
    """Drain a ``count`` backlog with the peer's own worker; tasks per second while busy.

    The peer's store gives the busy span when it records times (``busy_span``); else it is
    timed here from the first poll that saw a task finished to the one that saw them all.
    """
    peer.reset()
    peer.fill(count)
    commands = peer.worker_commands(processes)
    first: tuple[float, int] | None = None
    with Workers(commands) as workers:
        deadline = time.monotonic() + 60 + count / 20
        while (done := peer.finished(count)) < count:
            if done and first is None:
                first = (time.perf_counter(), done)
            workers.check(f"{done} of {count} tasks finished", deadline)
            time.sleep(peer.poll_seconds)
        last = time.perf_counter()
    span = peer.busy_span(count)
    if span is None:
        if first is None:
            raise RuntimeError(f"all {count} tasks finished before the first poll: raise the backlog")
        span = (last - first[0], count - first[1])
    seconds, tasks = span
    return {"rate": tasks / seconds, "seconds": seconds, "commands": [" ".join(c) for c in commands]}


def latency(peer: Harness, per_second: float, seconds: float) -> dict[str, Any]:
    """Enqueue the stamp task at a steady rate to one idle worker; each start minus its enqueue time."""
    peer.reset()
    stamps = Path(tempfile.mkdtemp(prefix="peers-")) / "stamps"
    os.environ[harness.STAMP_FILE] = str(stamps)  # the worker inherits it
    sent: dict[int, float] = {}
    with Workers(peer.worker_commands(1)) as workers:
        for i in range(1, WARM_UP + 1):
            peer.enqueue(harness.STAMP_TASK, -i)
        _wait_for_stamps(stamps, set(range(-WARM_UP, 0)), workers)
        start = time.perf_counter()
        for i in range(int(per_second * seconds)):
            delay = start + i / per_second - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[i] = time.time()
            peer.enqueue(harness.STAMP_TASK, i)
        started = _wait_for_stamps(stamps, set(sent), workers)
    stamps.unlink()
    stamps.parent.rmdir()
    return {"latencies_ms": sorted((started[i] - sent[i]) * 1000 for i in sent)}


def _wait_for_stamps(
    path: Path, numbers: set[int], workers: Workers, timeout: float = 60
) -> dict[int, float]:
    deadline = time.monotonic() + timeout
    while not numbers <= (stamps := harness.read_stamps(path)).keys():
        workers.check(f"{len(numbers & stamps.keys())} of {len(numbers)} tasks started", deadline)
        time.sleep(0.05)
    return stamps


class Workers:
    """The peer's worker processes, each in a session of its own; stopped as their CLI expects."""

    def __init__(self, commands: list[list[str]]) -> None:
        self.log = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.popens = [
            subprocess.Popen(c, cwd=ROOT, env=env, stdout=self.log, stderr=self.log, start_new_session=True)
            for c in commands
        ]

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check(self, progress: str, deadline: float) -> None:
        """Raise, with the workers' log, if one has exited or the deadline has passed."""
        exited = [p.returncode for p in self.popens if p.poll() is not None]
        if exited or time.monotonic() > deadline:
            ended = f"a worker exited {exited[0]}" if exited else "past the time limit"
            raise RuntimeError(f"{ended} with {progress}; the workers' last log lines:\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM (a warm shutdown for each peer); SIGKILL to the session 30 s later."""
        for popen in self.popens:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
        for popen in self.popens:
            try:
                popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()

    def tail(self, lines: int = 15) -> str:
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])


MEASURES: dict[str, Callable[..., dict[str, Any]]] = {
    "enqueue": enqueue_rate,
    "bulk": bulk_rate,
    "drain": drain,
    "latency": latency,
}


def main(argv: list[str]) -> int:
    name, measure, *numbers = argv
    peer = load(name)
    result = MEASURES[measure](peer, *(float(n) if "." in n else int(n) for n in numbers))
    print(json.dumps({"peer": name, "version": peer.version, "measure": measure, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
