"""``python manage.py qtasks_worker``: run tasks until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qtasks_django.conf import CONCURRENCY, DELAY, INTERVAL, Bounds, settings
from qtasks_django.management.options import integer_in, number_in
from qtasks_django.notifiers import get_notifier
from qtasks_django.tasks.app import get_app
from qtasks_django.worker import Worker
from qtasks_django.worker.sessions import name_sessions
from qtasks_django.worker.supervisor import Supervisor

#: The exit code of a worker that stopped itself because one of its own threads died.
FAILED = 3
logger = logging.getLogger("qtasks_django.worker")

#: Worker processes one command starts (each with its own slots and connections).
PROCESSES = Bounds(1, 1024, integer=True)


def queue_list(value: str) -> list[str]:
    queues = [q.strip() for q in value.split(",") if q.strip()]
    if not queues:
        raise argparse.ArgumentTypeError("give at least one queue name")
    return queues


class Command(BaseCommand):
    help = "Run a qtasks worker: claim tasks from the database and execute them."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--concurrency",
            "-c",
            type=integer_in(CONCURRENCY),
            default=None,
            help="Tasks run at once (QTASKS['WORKER_CONCURRENCY']).",
        )
        parser.add_argument(
            "--processes",
            "-P",
            type=integer_in(PROCESSES),
            default=1,
            help="Worker processes, each with --concurrency slots (default 1).",
        )
        parser.add_argument(
            "--queues",
            "-Q",
            type=queue_list,
            default=None,
            help="Comma-separated queues to serve (default: all).",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=number_in(DELAY),
            default=None,
            help="Seconds running tasks get to finish on SIGTERM/SIGINT.",
        )
        parser.add_argument(
            "--poll-interval",
            type=number_in(INTERVAL),
            default=None,
            help="Seconds between polls when no notification arrives.",
        )
        parser.add_argument("--burst", action="store_true", help="Exit once no task is ready or running.")
        parser.add_argument(
            "--pool",
            choices=["process", "thread"],
            default=None,
            help="Where sync tasks run: task processes (killable at max_time) or threads "
            "(default: QTASKS['SYNC_POOL'], 'process').",
        )
        parser.add_argument(
            "--no-schedules",
            action="store_true",
            help="Do not fire schedules from this worker (other workers still do; see docs/schedules.md).",
        )
        parser.add_argument(
            "--worker-id", default=None, help="Worker id shown in the admin (default: host-pid-random)."
        )
        parser.add_argument(
            "--log-level",
            default=None,
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="Level of the qtasks_django loggers (default from --verbosity).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.refused:
            # Reached with --skip-checks only: the system checks stop the command before.
            raise CommandError("; ".join(settings.refused.values()))
        self._configure_logging(options["log_level"], options["verbosity"])
        if options["processes"] > 1:
            name_sessions(f"{options['worker_id'] or f'{socket.gethostname()}-{os.getpid()}'} supervisor")
            code = Supervisor(options["processes"], sys.argv).run()
            if code:
                raise CommandError("a worker process failed (exit codes logged above)", returncode=code)
            return
        app = get_app()
        worker = Worker(
            app=app,
            queues=options["queues"],
            concurrency=options["concurrency"] or settings.WORKER_CONCURRENCY,
            shutdown_timeout=settings.SHUTDOWN_TIMEOUT
            if options["shutdown_timeout"] is None
            else options["shutdown_timeout"],
            poll_interval=options["poll_interval"],
            burst=options["burst"],
            schedules=not options["no_schedules"],
            worker_id=options["worker_id"],
            sync_pool=options["pool"],
        )
        name_sessions(worker.id)  # before it starts: its threads and task processes inherit the name
        self._banner(worker)
        with stop_on_signals(worker):
            worker.run()
        logger.info("worker %s stopped after %d task(s)", worker.id, worker.processed)
        # A worker that stopped itself (one of its threads died) exits non-zero, so that
        # its supervisor (systemd, Kubernetes) restarts it.
        code = FAILED if worker.failure else 0
        if worker.has_stuck_threads:
            time.sleep(0.2)
            if worker.has_stuck_threads:
                # Abandoned sync code is still running in a thread and would keep the
                # process alive; its task was already released or ended.
                logging.shutdown()
                sys.stdout.flush()
                os._exit(code)
        if worker.failure:
            raise CommandError(f"{worker.failure}; its tasks were released", returncode=code)

    def _banner(self, worker: Worker) -> None:
        names = sorted(worker.app.tasks)
        self.stdout.write(
            f"qtasks worker {worker.id}\n"
            f"  tasks ({len(names)}): {', '.join(names) or '-'}\n"
            f"  queues: {', '.join(worker.queues or ['* (all)'])}\n"
            f"  concurrency: {worker.concurrency}   shutdown timeout: {worker.shutdown_timeout}s   "
            f"sync tasks in: {'task processes' if worker.runner.processes is not None else 'threads'}\n"
            f"  notifier: {get_notifier().describe()}   poll interval: {worker.poll_interval}s\n"
        )
        self.stdout.flush()

    def _configure_logging(self, level: str | None, verbosity: int) -> None:
        chosen = level or {0: "WARNING", 1: "INFO", 2: "DEBUG", 3: "DEBUG"}.get(verbosity, "INFO")
        qtasks_logger = logging.getLogger("qtasks_django")
        qtasks_logger.setLevel(chosen)
        if not logging.getLogger().handlers and not qtasks_logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            qtasks_logger.addHandler(handler)


@contextmanager
def stop_on_signals(worker: Worker) -> Iterator[None]:
    """First SIGINT/SIGTERM drains; a second releases running tasks at once. Handlers are restored after."""

    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        force = len(received) > 1
        logger.warning(
            "received %s: %s",
            signal.Signals(signum).name,
            "releasing running tasks now" if force else "stopping after running tasks",
        )
        # Not worker.stop() here: the handler runs in the main thread, which may be
        # inside Event.wait holding that event's lock; setting it from here would
        # wait for that lock forever. A thread can take it.
        threading.Thread(
            target=worker.stop, kwargs={"force": force}, name="qtasks-signal", daemon=True
        ).start()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
