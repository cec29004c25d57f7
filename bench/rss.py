"""Peak resident memory of a process tree, read from ``/proc/<pid>/status``.

``VmHWM`` is the kernel's high-water mark of a process's resident set, so sampling it
often enough that each process is seen once shortly before it exits gives its peak.
The tree's peak is the largest sum, over one sample, of the current resident sets
(``VmRSS``) of a worker and every process below it: pages shared between them (the
task processes are forks) count once in each, as ``ps`` and most monitors count them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")


def resident_mb(pid: int) -> tuple[float, float] | None:
    """Return the process's (current, peak) resident set in MB, or None if it is gone."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    found = {}
    for line in status.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            found[line[:5]] = int(line.split()[1]) / 1024
    if len(found) != 2:
        return None  # a zombie: its memory is gone
    return found["VmRSS"], found["VmHWM"]


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


def descendants(root: int) -> dict[int, tuple[int, int]]:
    """Return ``{pid: (depth, top)}`` for ``root`` (depth 0) and every process below it.

    ``top`` is the process's ancestor at depth 1 (``root`` for the root itself).
    """
    tree = children_of()
    found = {root: (0, root)}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        depth, top = found[parent]
        for child in tree.get(parent, []):
            found[child] = (depth + 1, child if depth == 0 else top)
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
        self.tree_peak = 0.0  # the largest summed VmRSS of one worker and its task processes
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
        trees: dict[int, float] = {}
        for pid, (depth, top) in descendants(self.root).items():
            memory = resident_mb(pid)
            if memory is None:
                continue
            current, peak = memory
            role = self.role(depth)
            self.peaks[pid] = (role, max(peak, self.peaks.get(pid, (role, 0.0))[1]))
            if depth >= self.worker_depth:  # not the supervisor: a worker, or below one
                worker = top if self.worker_depth else self.root
                trees[worker] = trees.get(worker, 0.0) + current
        self.tree_peak = max(self.tree_peak, *trees.values(), 0.0)

    def role(self, depth: int) -> str:
        if depth < self.worker_depth:
            return "supervisor"
        return "worker" if depth == self.worker_depth else "task child"

    def by_role(self) -> dict[str, float]:
        """Return the largest peak seen per role, and the worker tree's (``"worker tree"``), in MB."""
        peaks: dict[str, float] = {}
        for role, peak in self.peaks.values():
            peaks[role] = max(peak, peaks.get(role, 0.0))
        if self.tree_peak:
            peaks["worker tree"] = self.tree_peak
        return peaks
