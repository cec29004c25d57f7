"""One run of one task inside a worker: its arguments, context and I/O helpers."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from django.db import connections

from .context import TaskContext

if TYPE_CHECKING:
    from .models import TaskRecord
    from .queue import DatabaseQueue
    from .schemas import TaskExecSchema
    from .task import BaseTask


class TaskRun:
    """Per-run state handed to the executor; ``run_sync`` runs sync code in a slot thread."""

    def __init__(
        self,
        *,
        record: TaskRecord,
        schema: TaskExecSchema,
        task: BaseTask,
        queue: DatabaseQueue,
        thread_pool: Executor,
        components: dict[str, Any],
    ) -> None:
        self.record = record
        self.schema = schema
        self.queue = queue
        self.thread_pool = thread_pool
        self.args = list(record.args)
        self.kwargs = dict(record.kwargs)
        self.ctx = TaskContext(
            app=task.app,
            task_name=schema.name,
            task_uuid=record.uuid,
            is_async=_is_async_function(schema),
            components=components,
        )
        self.echo_object = task.for_run(self.ctx) if schema.echo else None
        self._progress_seq = 0

    @property
    def uuid(self) -> Any:
        return self.record.uuid

    async def run_sync(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func`` in a slot thread, keeping context variables (the current task)."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, _in_thread, func, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.thread_pool, call)

    async def save_progress(self, value: Any) -> None:
        self._progress_seq += 1
        await self.run_sync(self.queue.add_progress, self.record, self._progress_seq, value)

    def stop(self, reason: str) -> None:
        """Ask the task to stop: ``ctx.sleep`` raises at once from now on."""
        self.ctx.stop_reason = reason  # type: ignore[attr-defined]
        self.ctx.stop_event.set()


def _is_async_function(schema: TaskExecSchema) -> bool:
    import inspect

    return inspect.iscoroutinefunction(schema.func) or schema.generating == "async"


def _in_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    finally:
        # Slot threads keep their connection between tasks (a worker is long-lived);
        # only a connection broken by this call is dropped, so the next one reconnects.
        for conn in connections.all(initialized_only=True):
            if conn.errors_occurred and conn.connection is not None and not conn.in_atomic_block:
                if not conn.is_usable():
                    conn.close()
                conn.errors_occurred = False
