"""Peak resident memory of a process tree, read from ``/proc/<pid>/status`` (``VmHWM``).

``VmHWM`` is the kernel's high-water mark of a process's resident set, so sampling it
often enough that each process is seen once shortly before it exits gives its peak.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")


def peak_rss_mb(pid: int) -> float | None:
    """Return the process's peak resident set in MB, or None if it is gone."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def children_of() -> dict[int, list[int]]:
    """Return parent pid → child pids for every process visible now."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            stat = (PROC / entry.name / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after it.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def descendants(root: int) -> dict[int, int]:
    """Return ``{pid: depth}`` for ``root`` (depth 0) and every process below it."""
    tree = children_of()
    found = {root: 0}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for child in tree.get(parent, []):
            found[child] = found[parent] + 1
            frontier.append(child)
    return found


class TreeSampler:
    """Sample the peak RSS of a process tree in a thread until stopped.

    ``worker_depth`` says where the workers are: 0 for ``qtasks_worker --processes 1``
    (the root is the worker), 1 with ``--processes N`` (the root is the supervisor).
    Anything below a worker runs its tasks (a process pool, a fork server).
    """

    def __init__(self, root: int, worker_depth: int, interval: float = 0.05) -> None:
        self.root = root
        self.worker_depth = worker_depth
        self.interval = interval
        self.peaks: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        for pid, depth in descendants(self.root).items():
            peak = peak_rss_mb(pid)
            if peak is None:
                continue
            role = self.role(depth)
            self.peaks[pid] = (role, max(peak, self.peaks.get(pid, (role, 0.0))[1]))

    def role(self, depth: int) -> str:
        if depth < self.worker_depth:
            return "supervisor"
        return "worker" if depth == self.worker_depth else "task child"

    def by_role(self) -> dict[str, float]:
        """Return the largest peak seen per role, in MB."""
        peaks: dict[str, float] = {}
        for role, peak in self.peaks.values():
            peaks[role] = max(peak, peaks.get(role, 0.0))
        return peaks
