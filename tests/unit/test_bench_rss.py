"""The bench's memory sampler: per-process peaks, and the peak sum over a worker's tree."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from bench.rss import TreeSampler, descendants, resident_mb


def test_tree_peak_sums_the_resident_sets_of_a_process_and_its_children() -> None:
    # A "worker" (the shell) with two "task processes" (the sleeps).
    tree = subprocess.Popen(["sh", "-c", "sleep 5 & sleep 5 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while len(descendants(tree.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        pids = list(descendants(tree.pid))
        assert len(pids) == 3
        sampler = TreeSampler(tree.pid, worker_depth=0)
        sampler.sample()
        current = [memory[0] for pid in pids if (memory := resident_mb(pid))]
    finally:
        os.killpg(tree.pid, signal.SIGKILL)  # the sleeps too
        tree.wait()

    peaks = sampler.by_role()
    assert set(peaks) == {"worker", "task child", "worker tree"}
    assert peaks["worker tree"] > max(current)
    assert abs(peaks["worker tree"] - sum(current)) < 0.5  # the same pages, read a moment apart
