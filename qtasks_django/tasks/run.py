"""One run of one task: its arguments, its context, and the hooks the executor calls.

The worker makes a ``TaskRun`` for each claimed row and hands it to the executor; the
run's hooks (``run_sync``, ``save_progress``, ``stop``) lead back into whatever hosts it:
the worker's threads, a task process, the queue's fenced progress writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..exceptions import QTasksError
from .context import TaskContext

if TYPE_CHECKING:
    from ..models import TaskRecord
    from ..queue.finishes import Finishes
    from .definition import TaskExecSchema
    from .task import BaseTask


class MalformedTaskRow(QTasksError):
    """A task row the worker cannot run as stored (written around the queue, say)."""


class SyncRunner(Protocol):
    """Where sync code of a run goes (the worker's threads)."""

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]: ...


class StopChannel(Protocol):
    """How a stop reaches a run hosted elsewhere (the task process running it)."""

    def send_stop(self, uuid: Any, reason: str) -> bool: ...


class TaskRun:
    """Per-run state handed to the executor; ``run_sync`` runs sync code off the event loop."""

    def __init__(
        self,
        *,
        record: TaskRecord,
        schema: TaskExecSchema,
        task: BaseTask,
        finishes: Finishes,
        threads: SyncRunner | None,
        components: dict[str, Any],
    ) -> None:
        self.record = record
        self.schema = schema
        self.finishes = finishes
        self.threads = threads
        if not isinstance(record.args, list) or not isinstance(record.kwargs, dict):
            raise MalformedTaskRow(
                f"args must be a JSON list and kwargs a JSON object, got {type(record.args).__name__} "
                f"and {type(record.kwargs).__name__}"
            )
        self.args = list(record.args)
        self.kwargs = dict(record.kwargs)
        self.ctx = TaskContext(
            app=task.app,
            task_name=schema.name,
            task_uuid=record.uuid,
            is_async=schema.runs_async,
            components=components,
        )
        self.echo_object = task.for_run(self.ctx) if schema.echo else None
        self._progress_seq = 0
        self.child: StopChannel | None = None  # set while a task process runs it
        self.limit: asyncio.Timeout | None = None  # the max_time scope, moved up to force a stop
        self.forced_reason = ""
        self.released = False  # given back to the queue at shutdown: its outcome is not written

    @property
    def uuid(self) -> Any:
        return self.record.uuid

    async def run_sync(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func`` in one of the worker's threads, keeping context variables (the current task).

        Without threads (inside a task process) it runs right here.
        """
        if self.threads is None:
            return func(*args, **kwargs)
        return await self.threads.run(func, *args, **kwargs)

    async def save_progress(self, value: Any) -> None:
        self._progress_seq += 1
        await self.run_sync(self.finishes.add_progress, self.record, self._progress_seq, value)

    def stop(self, reason: str) -> None:
        """Ask the task to stop: ``ctx.sleep`` and the next progress step raise from now on."""
        self.ctx.stop_reason = reason
        self.ctx.stop_event.set()
        child = self.child
        if child is not None:
            child.send_stop(self.uuid, reason)

    def force(self, reason: str) -> None:
        """Stop the task now, whatever it is doing (call on the event loop); it ends ``cancel``."""
        self.forced_reason = reason
        if self.limit is not None and not self.limit.expired():
            self.limit.reschedule(asyncio.get_running_loop().time())
