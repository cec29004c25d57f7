"""Helpers of the fault suite: workers whose whole process tree is tracked, enqueueing, waiting.

Test modules import the fixtures ``fleet_fixture`` and ``journal_fixture`` (named
``fleet`` and ``journal`` for pytest) next to the helpers they use; the counting of
lost, duplicated and stranded tasks is in ``ledger.py``.
"""

from __future__ import annotations

import os
import signal
import time
import uuid as uuid_lib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import WorkerProcess, wait_for
from .ledger import Journal

#: Set in the environment of each worker a ``Fleet`` starts; its task processes inherit it.
TAG = "QTASKS_FAULT_WORKER"


def full_run() -> bool:
    """Whether the long variants run (``QTASKS_FAULTS_FULL=1``): 10,000 tasks instead of 2,000."""
    return os.environ.get("QTASKS_FAULTS_FULL", "") == "1"


# -- processes ---------------------------------------------------------------------------


def tagged_processes(tag: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries ``QTASKS_FAULT_WORKER=tag``.

    A worker's task processes inherit its environment, so this finds them even after
    the worker died and they were re-parented.
    """
    wanted = f"{TAG}={tag}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
            state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if state != "Z" and wanted in environ.split(b"\0"):
            found.append(int(name))
    return sorted(found)


def leftovers(worker: WorkerProcess) -> list[int]:
    """Processes of ``worker`` (its task processes included) still alive."""
    return tagged_processes(worker.id)


def assert_no_leftovers(worker: WorkerProcess, timeout: float = 5.0) -> None:
    """Fail (after killing them) if processes of ``worker`` outlive it for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (alive := leftovers(worker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive:
        described = {pid: _cmdline(pid) for pid in alive}
        _kill_all(alive)
        pytest.fail(f"worker {worker.id} left processes behind: {described}")


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time (user + system) the live ones of ``pids`` have used so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def busy_cpu(worker: WorkerProcess, window: float = 1.0) -> float:
    """CPU seconds the processes of ``worker`` burn during ``window`` seconds (about 0 when idle)."""
    pids = leftovers(worker)
    before = cpu_seconds(pids)
    time.sleep(window)
    return cpu_seconds(pids) - before


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def _kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Fleet:
    """Workers started for one test, each tagged so that its whole process tree can be found."""

    def __init__(self, start_worker: Callable[..., WorkerProcess]) -> None:
        self._start = start_worker
        self.workers: list[WorkerProcess] = []

    def start(
        self, *options: str, env: dict[str, str] | None = None, wait: bool = True, using: str = "default"
    ) -> WorkerProcess:
        """Start ``qtasks_worker *options``; by default wait until it has registered in ``using``."""
        worker_id = f"fault-{uuid_lib.uuid4().hex[:8]}"
        worker = self._start(*options, worker_id=worker_id, env={**(env or {}), TAG: worker_id})
        self.workers.append(worker)
        if wait:
            self._wait_registered(worker, using)
        return worker

    def _wait_registered(self, worker: WorkerProcess, using: str) -> None:
        from qtasks_django.models import WorkerRecord

        def ready() -> bool:
            self.check_alive(worker)
            return WorkerRecord.objects.using(using).filter(id=worker.id).exists()

        wait_for(ready, timeout=30, what=f"worker {worker.id} to register")

    def check_alive(self, *workers: WorkerProcess) -> None:
        """Fail at once, with its log, if one of ``workers`` (default: all) exited."""
        for worker in workers or self.workers:
            if not worker.alive():
                pytest.fail(f"worker {worker.id} exited with {worker.proc.returncode}\n{worker.describe()}")

    def stop_all(self, timeout: float = 30.0) -> None:
        """SIGTERM every live worker, expect exit code 0 and no process left behind."""
        live = [w for w in self.workers if w.alive()]
        for worker in live:
            worker.send(signal.SIGTERM)
        for worker in live:
            assert worker.wait_exit(timeout) == 0, worker.describe()
        for worker in self.workers:
            assert_no_leftovers(worker)

    def close(self) -> None:
        """Kill whatever is left of every worker's process tree (teardown)."""
        for worker in self.workers:
            worker.kill()
            _kill_all(leftovers(worker))


@pytest.fixture(name="fleet")
def fleet_fixture(start_worker: Callable[..., WorkerProcess]) -> Iterator[Fleet]:
    """A ``Fleet`` over the e2e tier's ``start_worker``; every process it started is killed after the test."""
    workers = Fleet(start_worker)
    yield workers
    workers.close()


@pytest.fixture(name="journal")
def journal_fixture(tmp_path: Path) -> Journal:
    """This test's journal file (world-writable directory: task processes may run as anyone)."""
    return Journal(tmp_path / "journal.log")


def enqueue_jobs(
    count: int,
    journal: Journal,
    *,
    task: str = "fault_job",
    using: str = "default",
    prefix: str = "",
    **kwargs: Any,
) -> dict[str, Any]:
    """Enqueue ``count`` runs of ``task(journal, key, **kwargs)`` in one statement; return key → uuid.

    Keys are ``prefix`` followed by 0, 1, 2...

    ``app.add_tasks`` on the default database; the same bulk path (validated, with the
    wake-up) through a queue bound to ``using`` on another one (a private server).
    """
    from qtasks_django.queue.store import DatabaseQueue
    from qtasks_django.tasks.app import get_app
    from qtasks_django.tasks.enqueue import Call, build_row

    app = get_app()
    keys = [f"{prefix}{n}" for n in range(count)]
    if using == "default":
        created = app.add_tasks([_call(task, journal, key, kwargs) for key in keys])
    else:
        rows = [build_row(app, Call(task, (str(journal), key), kwargs)) for key in keys]
        created = DatabaseQueue(using).insert(rows)
    return {key: row.uuid for key, row in zip(keys, created, strict=True)}


def _call(task: str, journal: Journal, key: str, kwargs: dict[str, Any]) -> Any:
    """The prebuilt call ``task(journal, key, **kwargs)`` (not enqueued)."""
    from tests import tasks_faults

    return getattr(tasks_faults, task)(str(journal), key, **kwargs)


def wakeup_latencies(
    journal: Journal,
    *,
    count: int = 3,
    using: str = "default",
    prefix: str = "w",
    into: dict[str, Any] | None = None,
) -> list[float]:
    """Enqueue ``count`` tasks one at a time into idle workers; return each one's enqueue-to-claim seconds.

    The tasks are added to ``into`` (key → uuid) when given.
    """
    from qtasks_django.models import TaskRecord

    samples = []
    for n in range(count):
        enqueued = enqueue_jobs(1, journal, using=using, prefix=f"{prefix}{n}-")
        [uuid] = enqueued.values()
        if into is not None:
            into.update(enqueued)

        def claimed(uuid: Any = uuid) -> Any:
            return TaskRecord.objects.using(using).filter(pk=uuid, started_at__isnull=False).first()

        record = wait_for(claimed, timeout=30, what=f"wake-up sample {n}")
        samples.append((record.started_at - record.created_at).total_seconds())
        time.sleep(0.2)
    return samples


def wait_status(uuid: Any, statuses: Iterable[str], *, timeout: float, what: str) -> Any:
    """Wait until the task is in one of ``statuses``; return its record."""
    from qtasks_django.models import TaskRecord

    wanted = set(statuses)

    def reached() -> Any:
        record = TaskRecord.objects.get(pk=uuid)
        return record if record.status in wanted else None

    return wait_for(reached, timeout=timeout, what=what)
