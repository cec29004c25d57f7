"""One run of one task inside a worker: its arguments, context and I/O helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import TaskContext
from .exceptions import QTasksError

if TYPE_CHECKING:
    from .models import TaskRecord
    from .queue import DatabaseQueue
    from .schemas import TaskExecSchema
    from .slots import SlotThreads
    from .task import BaseTask


class MalformedTaskRow(QTasksError):
    """A task row the worker cannot run as stored (written around the queue, say)."""


class TaskRun:
    """Per-run state handed to the executor; ``run_sync`` runs sync code in a slot thread."""

    def __init__(
        self,
        *,
        record: TaskRecord,
        schema: TaskExecSchema,
        task: BaseTask,
        queue: DatabaseQueue,
        slots: SlotThreads,
        components: dict[str, Any],
    ) -> None:
        self.record = record
        self.schema = schema
        self.queue = queue
        self.slots = slots
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

    @property
    def uuid(self) -> Any:
        return self.record.uuid

    async def run_sync(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func`` in a slot thread, keeping context variables (the current task)."""
        return await self.slots.run(func, *args, **kwargs)

    async def save_progress(self, value: Any) -> None:
        self._progress_seq += 1
        await self.run_sync(self.queue.add_progress, self.record, self._progress_seq, value)

    def stop(self, reason: str) -> None:
        """Ask the task to stop: ``ctx.sleep`` raises at once from now on."""
        self.ctx.stop_reason = reason
        self.ctx.stop_event.set()
