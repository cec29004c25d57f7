"""The threads the sync parts of tasks run in (off the event loop), and their database connections."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connections

logger = logging.getLogger(__name__)


class TaskThreads:
    """A thread pool whose threads keep one connection each, at most ``keep`` of them.

    A worker is long-lived, so up to ``keep`` threads (the worker's concurrency) keep
    their connection between tasks; a thread beyond them (the pool has spares for sync
    code abandoned past its ``max_time``) closes its connection after each call, so
    the connections a worker holds stay bounded by its concurrency, not its pool size.
    A connection broken by a call is dropped at once. ``close`` closes the rest, also
    those of threads still stuck in abandoned sync code.
    """

    def __init__(self, size: int, *, keep: int | None = None) -> None:
        self._pool = ThreadPoolExecutor(size, thread_name_prefix="qtasks-slot")
        self._keep = size if keep is None else keep
        self._keepers: set[int] = set()  # idents of the threads that keep their connection
        self._wrappers: list[Any] = []
        self._lock = threading.Lock()

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func`` in one of these threads, keeping context variables (the current task)."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, self._call, func, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def submit(self, func: Callable[..., Any], *args: Any) -> Any:
        return self._pool.submit(self._call, func, *args)

    def _call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            self._tidy_connections()

    def _tidy_connections(self) -> None:
        for conn in connections.all(initialized_only=True):
            with self._lock:
                if not any(conn is known for known in self._wrappers):
                    self._wrappers.append(conn)
            if conn.errors_occurred and conn.connection is not None and not conn.in_atomic_block:
                if not conn.is_usable():
                    conn.close()
                conn.errors_occurred = False
        if not any(conn.connection is not None for conn in connections.all(initialized_only=True)):
            return
        ident = threading.get_ident()
        with self._lock:
            keeps = ident in self._keepers or len(self._keepers) < self._keep
            if keeps:
                self._keepers.add(ident)
        if not keeps:
            for conn in connections.all(initialized_only=True):
                if not conn.in_atomic_block:
                    conn.close()

    def close(self) -> None:
        """Stop the threads (without waiting for stuck ones) and close every connection they opened."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            wrappers, self._wrappers = self._wrappers, []
        for conn in wrappers:
            # Closing from this thread: Django allows it once sharing is declared.
            conn.inc_thread_sharing()
            try:
                conn.close()
            except Exception:
                logger.debug("closing a task thread's connection failed", exc_info=True)
            finally:
                conn.dec_thread_sharing()

    @property
    def busy(self) -> bool:
        """Whether one of these threads still runs code (abandoned sync code after a timeout, say)."""
        return any(t.name.startswith("qtasks-slot") and t.is_alive() for t in threading.enumerate())
