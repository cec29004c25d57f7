"""Measures that need real ``qtasks_worker`` processes: drain rate, latency, peak memory."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.db import connection
from django.utils import timezone

from bench import measures
from bench.report import percentile
from bench.rss import TreeSampler

ROOT = Path(__file__).resolve().parent.parent
STATS_SETTLE_SECONDS = 2.5
"""Quiet time before ``pg_stat_database`` is read after work: a backend publishes its counts at
most once a second, when it next ends a transaction, and an idle worker polls every second."""
QUIET_PER_PROCESS = 5
"""Transactions a second per idle worker process below which the database counts as quiet."""


@dataclass
class WorkerResult:
    """One worker run: a rate or latency samples, and the peak RSS per process role."""

    rate: float = 0.0
    wall_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    rss_mb: dict[str, float] = field(default_factory=dict)
    transactions_per_task: float | None = None


def worker_command(processes: int, concurrency: int | None, burst: bool) -> list[str]:
    """Return the ``manage.py qtasks_worker`` command line a user would type."""
    command = [sys.executable, "manage.py", "qtasks_worker", "--processes", str(processes)]
    command += ["--log-level", "WARNING"]
    if concurrency:
        command += ["--concurrency", str(concurrency)]
    return [*command, "--burst"] if burst else command


class WorkerProcess:
    """A ``qtasks_worker`` subprocess on the bench settings; its log is kept for error reports.

    The start-up banner goes nowhere; warnings and errors go to a temporary file, whose
    tail :meth:`close` returns (a broken worker can log thousands of tracebacks).
    """

    def __init__(self, processes: int, concurrency: int | None, *, burst: bool) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
        self.log = tempfile.TemporaryFile()
        self.popen = subprocess.Popen(
            worker_command(processes, concurrency, burst),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.pid = self.popen.pid
        self.tail = ""

    def wait(self, timeout: float) -> int | None:
        """Return the exit code, or None (after stopping it) if it ran past ``timeout``."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return None

    def exited(self) -> int | None:
        return self.popen.poll()

    def stop(self) -> None:
        """SIGTERM (drain running tasks, exit 0); SIGKILL if it is still there 30 s later."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def close(self, lines: int = 15) -> str:
        """Stop the worker and return the last ``lines`` it logged (again on a second call)."""
        self.stop()
        if not self.log.closed:
            self.log.seek(0)
            self.tail = "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])
            self.log.close()
        return self.tail


def drain_timeout(count: int) -> float:
    """Seconds after which a drain is given up: a minute plus 20 tasks per second."""
    return 60 + count / 20


def drain(
    task_name: str, count: int, processes: int, concurrency: int | None, concurrency_limit: int | None = None
) -> WorkerResult:
    """Time a burst worker draining a ``count`` backlog: first claim to last finish, from the rows.

    ``concurrency_limit`` replaces the limit of a task declaring one (``measures.prepare_backlog``).
    """
    marker = measures.prepare_backlog(task_name, count, concurrency_limit)
    started = time.perf_counter()
    worker = WorkerProcess(processes, concurrency, burst=True)
    with TreeSampler(worker.pid, worker_depth=0 if processes == 1 else 1) as sampler:
        code = worker.wait(drain_timeout(count))
    wall = time.perf_counter() - started
    log = worker.close()
    done = measures.drained_since(marker)
    if code != 0 or done["succeeded"] != count:
        ended = "ran past the time limit" if code is None else f"exited {code}"
        raise RuntimeError(
            f"qtasks_worker {ended} after {wall:.0f}s with {done['succeeded']} of {count} "
            f"{task_name} tasks succeeded; its last log lines:\n{log}"
        )
    busy = (done["last_finish"] - done["first_start"]).total_seconds()
    return WorkerResult(rate=count / busy, wall_seconds=wall, rss_mb=sampler.by_role())


def latency(task_name: str, per_second: float, seconds: float, concurrency: int | None) -> WorkerResult:
    """Enqueue ``task_name`` at a steady rate to an idle worker; return enqueue→start latencies."""
    measures.clear_tasks()
    worker = WorkerProcess(1, concurrency, burst=False)
    try:
        with TreeSampler(worker.pid, worker_depth=0) as sampler:
            _wait_until_done(_enqueue(task_name, 3), worker)  # the worker is up and warm
            uuids = _enqueue_steadily(task_name, per_second, seconds)
            _wait_until_done(uuids, worker)
    finally:
        log = worker.close()
    samples = _latencies_ms(uuids)
    if len(samples) != len(uuids):
        raise RuntimeError(f"{len(samples)} of {len(uuids)} tasks recorded a start; log:\n{log}")
    return WorkerResult(rate=len(samples) / seconds, latencies_ms=samples, rss_mb=sampler.by_role())


def herd(
    task_name: str,
    processes: int,
    per_second: float,
    seconds: float,
    concurrency: int | None,
    window_unit: float,
) -> WorkerResult:
    """Enqueue ``task_name`` steadily to ``processes`` idle workers: latencies and transactions per task.

    The transactions are the bench database's (``pg_stat_database``: the enqueues, the workers'
    wake-ups, claims and finishes) while the tasks are enqueued and run, minus those of an idle
    window of the same length right after (the workers' polls and heartbeats). Both windows
    last a whole multiple of ``window_unit``, the workers' rescue interval in a full run: every
    process sweeps once per interval, and each window then holds as many sweeps as the other.
    """
    measures.clear_tasks()
    launched = timezone.now()
    worker = WorkerProcess(processes, concurrency, burst=False)
    try:
        _wait_until_registered(processes, launched, worker)
        _wait_until_done(_enqueue(task_name, 3 * processes), worker)  # up and warm
        _wait_until_quiet(processes)
        time.sleep(STATS_SETTLE_SECONDS)
        first, started = database_transactions(), time.monotonic()
        uuids = _enqueue_steadily(task_name, per_second, seconds)
        _wait_until_done(uuids, worker)
        time.sleep(STATS_SETTLE_SECONDS)
        window = whole_windows(time.monotonic() - started, window_unit)
        time.sleep(max(0.0, started + window - time.monotonic()))
        busy = database_transactions() - first
        first = database_transactions()
        time.sleep(window)
        idle = database_transactions() - first
    finally:
        log = worker.close()
    samples = _latencies_ms(uuids)
    if len(samples) != len(uuids):
        raise RuntimeError(f"{len(samples)} of {len(uuids)} tasks recorded a start; log:\n{log}")
    return WorkerResult(
        rate=len(samples) / seconds,
        latencies_ms=samples,
        transactions_per_task=transactions_per_task(busy, idle, len(uuids)),
    )


def whole_windows(elapsed: float, unit: float) -> float:
    """Return ``elapsed`` seconds rounded up to a whole number (at least 1) of ``unit``."""
    return max(1, math.ceil(elapsed / unit)) * unit


def transactions_per_task(busy: int, idle: int, tasks: int) -> float:
    """Return the transactions a task cost: those of the busy window beyond the idle one's, per task."""
    return (busy - idle) / tasks


def database_transactions() -> int:
    """Return the bench database's committed plus rolled back transactions so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # read the counters anew, not a cached copy
        cursor.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(cursor.fetchone()[0])


def _wait_until_quiet(processes: int, timeout: float = 30.0) -> None:
    """Wait (at most ``timeout``) for two quiet seconds in a row: the workers' start-up is over.

    A worker registers its tasks after its own row, and its first rescue sweep and heartbeat
    follow; an idle one makes a few transactions a second (its polls), far below the bound.
    """
    deadline, quiet = time.monotonic() + timeout, 0
    last = database_transactions()
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(1.0)
        now = database_transactions()
        quiet = quiet + 1 if now - last <= QUIET_PER_PROCESS * processes + 10 else 0
        last = now


def _wait_until_registered(processes: int, launched: datetime, worker: WorkerProcess) -> None:
    """Wait until the ``processes`` workers started after ``launched`` have each registered."""
    from qtasks_django.models import WorkerRecord

    deadline = time.monotonic() + 60
    started = WorkerRecord.objects.filter(started_at__gte=launched, stopped_at__isnull=True)
    while started.count() < processes:
        if worker.exited() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"{started.count()} of {processes} workers registered; its last log lines:\n{worker.close()}"
            )
        time.sleep(0.1)


def _enqueue(task_name: str, count: int) -> list[object]:
    from qtasks_django.tasks.app import get_app

    app = get_app()
    return [app.add_task(task_name).uuid for _ in range(count)]


def _enqueue_steadily(task_name: str, per_second: float, seconds: float) -> list[object]:
    from qtasks_django.tasks.app import get_app

    app = get_app()
    uuids = []
    start = time.perf_counter()
    for i in range(int(per_second * seconds)):
        delay = start + i / per_second - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        uuids.append(app.add_task(task_name).uuid)
    return uuids


def _wait_until_done(uuids: list[object], worker: WorkerProcess, timeout: float = 60.0) -> None:
    from qtasks_django.models import TaskRecord

    deadline = time.monotonic() + timeout
    while TaskRecord.objects.filter(pk__in=uuids).exclude(status="success").exists():
        if worker.exited() is not None:
            raise RuntimeError(
                f"qtasks_worker exited {worker.exited()}; its last log lines:\n{worker.close()}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"tasks did not finish within {timeout}s; worker log:\n{worker.close()}")
        time.sleep(0.05)


def _latencies_ms(uuids: list[object]) -> list[float]:
    from qtasks_django.models import TaskRecord

    rows = TaskRecord.objects.filter(pk__in=uuids, status="success").values_list("created_at", "returning")
    return sorted((started - created.timestamp()) * 1000 for created, started in rows)


def latency_percentiles(result: WorkerResult) -> tuple[float, float]:
    """Return (p50, p99) of a latency run, in ms."""
    return percentile(result.latencies_ms, 50), percentile(result.latencies_ms, 99)
