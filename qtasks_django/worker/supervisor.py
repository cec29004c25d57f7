"""``qtasks_worker --processes N``: run N worker processes and relay signals to them."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger("qtasks_django.worker")


class Supervisor:
    """Start ``count`` copies of this command as single-process workers; stop them together.

    Children run in their own session, so a terminal's Ctrl-C reaches them once,
    through this process, and the usual two-signal protocol holds for each.
    """

    def __init__(self, count: int, argv: Sequence[str]) -> None:
        self.count = count
        self.argv = list(argv)
        self.children: list[subprocess.Popen[bytes]] = []

    def child_argv(self, index: int) -> list[str]:
        """Return this command line for child ``index``: one process, its own worker id."""
        argv: list[str] = []
        args = iter(self.argv)
        for arg in args:
            if arg == "--processes" or arg == "-P":
                next(args, None)
            elif arg.startswith("--processes="):
                continue
            elif arg == "--worker-id":
                argv += [arg, f"{next(args, 'worker')}-{index + 1}"]
            elif arg.startswith("--worker-id="):
                argv.append(f"{arg}-{index + 1}")
            else:
                argv.append(arg)
        return [sys.executable, *argv, "--processes", "1"]

    def run(self) -> int:
        """Run until every child has exited; return 0 only if each exited 0."""
        previous = {sig: signal.signal(sig, self._relay) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for index in range(self.count):
                self.children.append(subprocess.Popen(self.child_argv(index), start_new_session=True))
            logger.info("started %d worker processes: %s", self.count, [c.pid for c in self.children])
            while any(child.poll() is None for child in self.children):
                time.sleep(0.2)
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        codes = [child.returncode for child in self.children]
        logger.info("worker processes exited with %s", codes)
        return 0 if all(code == 0 for code in codes) else 1

    def _relay(self, signum: int, frame: Any) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signum)
