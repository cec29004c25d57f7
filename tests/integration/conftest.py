"""Fixtures of the integration tier: in-process workers on the real test database.

A worker runs tasks in its own threads, on their own database connections, so every
test that uses one is a transactional test (rows are committed, the other threads see
them). ``run_worker`` runs a burst worker in the test's thread until nothing is ready or
running; ``background_worker`` runs one in a thread for tests that wait on results.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qtasks_django import app
from qtasks_django.worker import Worker
from tests.integration.helpers import WorkerLeftovers, run_and_close


@pytest.fixture
def run_worker(transactional_db: None) -> Iterator[Callable[..., Worker]]:
    """``run_worker(**options)`` runs a burst worker until no task is ready or running."""

    leftovers = WorkerLeftovers()

    def run(**options: Any) -> Worker:
        worker = Worker(**{"app": app, "concurrency": 2, "burst": True, "poll_interval": 0.05, **options})
        leftovers.workers.append(worker)
        try:
            worker.run()
        finally:
            # A burst run returns without setting the stop flag, and its listener thread
            # then spins; stop() ends it (package issue, see test_worker.py).
            worker.stop()
        return worker

    yield run
    leftovers.clean_up()


@pytest.fixture
def background_worker(transactional_db: None) -> Iterator[Callable[..., Worker]]:
    """``background_worker(**options)`` starts a worker in a thread; it is stopped after the test."""
    leftovers = WorkerLeftovers()

    def start(**options: Any) -> Worker:
        # In a thread of pytest's process: no task processes (forking a threaded
        # process is unsafe); run_worker and the e2e tier cover them.
        worker = Worker(
            **{
                "app": app,
                "concurrency": 2,
                "poll_interval": 0.05,
                "shutdown_timeout": 2,
                "sync_pool": "thread",
                **options,
            }
        )
        leftovers.workers.append(worker)
        thread = threading.Thread(target=run_and_close, args=(worker,), name="it-worker", daemon=True)
        thread.start()
        return worker

    yield start
    leftovers.clean_up()
