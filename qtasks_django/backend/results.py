"""A Django ``TaskResult`` read from our rows: one retry chain, every field from the record.

A task's attempts are rows linked by ``retry_parent_uuid``/``retry_child_uuid``; the
result's id is the first row's uuid and its fields describe the whole chain: the status
of the current attempt, one ``TaskError`` per failed attempt, one worker id per started
attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import TaskCancelError
from ..status import TaskStatus
from .compat import Task, TaskError, TaskResult, TaskResultStatus

if TYPE_CHECKING:
    from ..models import TaskRecord
    from ..queue.rows import NewRow

#: Our statuses as Django's. ``retry`` (a failed attempt with a successor) only shows
#: when its successor is missing; a cancel is a failure with a ``TaskCancelError``.
STATUSES = {
    TaskStatus.NEW: TaskResultStatus.READY,
    TaskStatus.PROCESS: TaskResultStatus.RUNNING,
    TaskStatus.SUCCESS: TaskResultStatus.SUCCESSFUL,
    TaskStatus.ERROR: TaskResultStatus.FAILED,
    TaskStatus.CANCEL: TaskResultStatus.FAILED,
    TaskStatus.RETRY: TaskResultStatus.READY,
}

CANCEL_PATH = f"{TaskCancelError.__module__}.{TaskCancelError.__qualname__}"
TRACEBACK_HEADER = "Traceback (most recent call last):"


def ready_result(task: Task[..., Any], row: NewRow, alias: str) -> TaskResult[..., Any]:
    """Return the result of a row just written: ``READY``, nothing run yet."""
    fields = row.fields
    return TaskResult(
        task=task,
        id=str(fields["uuid"]),
        status=TaskResultStatus.READY,
        enqueued_at=fields["created_at"],
        started_at=None,
        finished_at=None,
        last_attempted_at=None,
        args=fields["args"],
        kwargs=fields["kwargs"],
        backend=alias,
        errors=[],
        worker_ids=[],
    )


def chain_result(task: Task[..., Any], chain: Sequence[TaskRecord], alias: str) -> TaskResult[..., Any]:
    """Return the result of a task's attempts, first to current (``chain`` is never empty)."""
    first, current = chain[0], chain[-1]
    status = STATUSES[TaskStatus(current.status)]
    started = [row for row in chain if row.started_at is not None]
    finished = status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
    result = TaskResult(
        task=task,
        id=str(first.uuid),
        status=status,
        enqueued_at=first.created_at,
        started_at=started[0].started_at if started else None,
        finished_at=current.finished_at if finished else None,
        last_attempted_at=started[-1].started_at if started else None,
        args=first.args,
        kwargs=first.kwargs,
        backend=alias,
        errors=[error for row in chain if (error := attempt_error(row)) is not None],
        worker_ids=[row.worker_id for row in started],
    )
    if status == TaskResultStatus.SUCCESSFUL:
        # Django keeps the value in a field its constructor does not take.
        object.__setattr__(result, "_return_value", current.returning)
    return result


def attempt_error(row: TaskRecord) -> TaskError | None:
    """Return the error of a failed or cancelled attempt, ``None`` for any other."""
    if row.status in (TaskStatus.ERROR, TaskStatus.RETRY):
        return TaskError(exception_class_path=exception_class_path(row.traceback), traceback=row.traceback)
    if row.status == TaskStatus.CANCEL:
        text = row.traceback or f"{CANCEL_PATH}: {row.cancel_reason or 'cancelled'}\n"
        return TaskError(exception_class_path=CANCEL_PATH, traceback=text)
    return None


def exception_class_path(traceback: str) -> str:
    """Return the dotted path of the exception a formatted traceback ends with.

    The row keeps the text ``traceback.format_exception`` made, whose last section is
    ``Traceback (most recent call last):``, indented frames, then ``module.Class: message``
    (``Class`` alone for builtins). A text without frames starts at that line.
    """
    start = traceback.rfind(TRACEBACK_HEADER)
    body = traceback[start + len(TRACEBACK_HEADER) :] if start >= 0 else traceback
    for line in body.splitlines():
        if line.strip() and not line[0].isspace():
            name = line.split(":", 1)[0].strip()
            return name if "." in name else f"builtins.{name}"
    return "builtins.Exception"  # no exception line at all: a row written around the worker
