"""Helpers of the integration tier: settings overrides, retry chains, and worker clean-up."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import override_settings

from qtasks_django.models import TaskRecord
from qtasks_django.worker import Worker

WORKER_THREAD_PREFIXES = ("qtasks-slot", "qtasks-loop", "qtasks-listen", "it-")


def qtasks_settings(**overrides: Any) -> override_settings:
    """``override_settings`` of the test QTASKS dict with some keys changed."""
    return override_settings(QTASKS={**django_settings.QTASKS, **overrides})


def chain_of(first_uuid: Any) -> list[TaskRecord]:
    """The records of a retry chain, first attempt first (follows ``retry_child_uuid``)."""
    records = [TaskRecord.objects.get(pk=first_uuid)]
    while records[-1].retry_child_uuid is not None:
        records.append(TaskRecord.objects.get(pk=records[-1].retry_child_uuid))
    return records


def wait_for_threads_to_end(
    prefixes: tuple[str, ...] = WORKER_THREAD_PREFIXES, timeout: float = 10.0
) -> None:
    """Wait until the worker's threads are gone (a slot may still finish abandoned sync code)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [t for t in threading.enumerate() if t.name.startswith(prefixes)]
        if not alive:
            return
        alive[0].join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]
    assert not alive, f"worker threads still running after {timeout}s: {alive}"


class WorkerLeftovers:
    """Collects what in-process workers leave behind and cleans it up deterministically.

    * The worker's slot threads end without closing their database connections, and its
      event loop is stopped but not closed (package issues, see test_worker.py). Left to
      the garbage collector they would warn (``ResourceWarning``, an error here) at a
      random later moment, and PostgreSQL refuses to drop the test database while a
      connection is open. So every connection opened outside the test's thread is
      recorded and, once its thread has ended, closed here; the workers are then
      collected with that warning silenced.
    * asgiref's one thread-sensitive thread serves ``sync_to_async`` calls of async tasks
      (``await self.ctx.get_metadata()``); it lives on, so its connection is closed there.
    """

    def __init__(self) -> None:
        self.workers: list[Worker] = []
        self._opened: list[tuple[threading.Thread, Any]] = []
        self._test_thread = threading.current_thread()
        connection_created.connect(self._record, weak=False, dispatch_uid=id(self))

    def _record(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        if threading.current_thread() is not self._test_thread:
            self._opened.append((threading.current_thread(), connection))

    def _close_loops(self) -> None:
        # Log records of the test (kept by pytest until after teardown) may hold a worker
        # through an exception's traceback, so its loop is closed here rather than left
        # to the garbage collector.
        for worker in self.workers:
            loop = getattr(worker, "_loop", None)
            if loop is not None and not loop.is_running() and not loop.is_closed():
                loop.close()

    def _stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()

    def clean_up(self) -> None:
        """Stop the workers, wait for their threads, close their connections, collect them."""
        connection_created.disconnect(dispatch_uid=id(self))
        self._stop_workers()
        wait_for_threads_to_end()
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(sync_to_async(connections.close_all)())
        finally:
            loop.close()
        for thread, wrapper in self._opened:
            if not thread.is_alive() and wrapper.connection is not None:
                wrapper.connection.close()  # the DB-API connection; its thread is gone
        self._close_loops()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            self.workers.clear()
            self._opened.clear()
            gc.collect()


def run_and_close(worker: Worker) -> None:
    """Thread target: run the worker, then close this thread's connections."""
    try:
        worker.run()
    finally:
        connections.close_all()
