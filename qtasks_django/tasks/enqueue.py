"""Enqueueing: validate a call, build its row, write it through the queue, and maybe wait.

Everything is validated before anything is written: the name is registered, the
arguments bind to the function and are JSON within the size cap, the priority and start
time are sound. Each violation is a ``QTasksError`` and no row is written.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuid_lib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.utils import timezone

from ..conf import settings
from ..exceptions import InvalidTaskArguments, QTasksError
from ..limits import queue_name_problem
from ..queue.rows import NewRow
from ..serialization import json_text
from .context import current_task_uuid
from .results import Task, TaskResult
from .validation import call_signature, resolve_schema, validate_call, validate_priority

if TYPE_CHECKING:
    from .app import QueueTasks


@dataclass(frozen=True)
class Call:
    """One enqueue to validate: what ``add_task`` got, minus the waiting."""

    task_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    priority: int | None = None
    eta: dt.datetime | None = None
    countdown: float | None = None
    queue: str | None = None
    """The queue for this call alone (Django's ``queue_name``); ``None``: the task's own."""
    unique_key: str | None = None
    """This call's own unique key (docs/flow-control.md); ``None``: the task's declaration."""
    unique_for: float | None = None


def enqueue(app: QueueTasks, call: Call, *, timeout: float | None, wait: bool = True) -> Task | None:
    """Validate, write the row in the caller's transaction; workers wake when it commits.

    With ``timeout`` (and ``wait``), block until the task ends; ``wait=False`` only
    validates the timeout and leaves the waiting to the (async) caller.
    """
    if timeout is not None:
        check_can_wait(app, timeout)
    [row] = app.queue.insert([build_row(app, call)])
    task = as_task(row)
    if timeout is None or not wait:
        return task
    return TaskResult(task.uuid, app=app).get(timeout)


def enqueue_many(app: QueueTasks, calls: Iterable[Call]) -> list[Task]:
    """Validate every call first, then write them all (nothing is written if one is invalid)."""
    rows = [build_row(app, call) for call in calls]
    return [as_task(row) for row in app.queue.insert(rows)]


def as_task(row: NewRow) -> Task:
    """The ``Task`` an enqueue returns: the new one, or the one already holding its unique key."""
    if row.existing is not None:
        return Task.from_record(row.existing, created=False)
    return Task.from_new_row(row)


def build_row(app: QueueTasks, call: Call) -> NewRow:
    """Validate ``call`` and return its unwritten row (raises, writing nothing, on bad input)."""
    schema = resolve_schema(app.tasks, call.task_name)
    priority = schema.priority if call.priority is None else validate_priority(call.priority)
    args, kwargs = validate_call(schema, call.args, call.kwargs, max_bytes=settings.MAX_PAYLOAD_BYTES)
    now = timezone.now()
    fields = {
        "uuid": uuid_lib.uuid4(),
        "task_name": call.task_name,
        "queue": call_queue(call.queue) or schema.queue or settings.DEFAULT_QUEUE,
        "priority": priority,
        "args": args.value,
        "kwargs": kwargs.value,
        "retry": schema.retry,
        "tags": schema.tags or [],
        "parent_uuid": current_task_uuid.get(),
        "created_at": now,
        "updated_at": now,
        "eta": start_time(now, call.eta, call.countdown),
    }
    fields.update(
        schema.flow.fields(
            call.task_name,
            call_signature(schema),
            (call.args, call.kwargs),
            now,
            unique_key=call.unique_key,
            unique_for=call.unique_for,
        )
    )
    return NewRow(fields, {"args": args.text, "kwargs": kwargs.text, "tags": tags_text(fields["tags"])})


def call_queue(queue: Any) -> str | None:
    """Return a call's own queue after checking a queue column holds it (``None``: none given)."""
    if queue is None:
        return None
    problem = queue_name_problem(queue)
    if problem:
        raise InvalidTaskArguments(problem)
    return str(queue)


def check_can_wait(app: QueueTasks, timeout: Any) -> None:
    """Refuse a wait that cannot end well: a bad timeout, or one inside a transaction."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:  # NaN too
        raise QTasksError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
    if app.queue.in_transaction:
        raise QTasksError(
            "add_task(timeout=...) inside a transaction would wait for a task no worker can see "
            "before commit; enqueue inside the transaction and wait after it"
        )


def start_time(now: dt.datetime, eta: Any, countdown: Any) -> dt.datetime:
    """Return when a task may start: ``eta``, ``now + countdown`` or ``now``."""
    if eta is not None and countdown is not None:
        raise InvalidTaskArguments("give eta or countdown, not both")
    if countdown is not None:
        if isinstance(countdown, bool) or not isinstance(countdown, int | float) or not countdown >= 0:
            raise InvalidTaskArguments(f"countdown must be a number of seconds >= 0, got {countdown!r}")
        try:
            return now + dt.timedelta(seconds=countdown)
        except (OverflowError, ValueError):  # inf, or past the year 9999
            raise InvalidTaskArguments(
                f"countdown of {countdown!r} seconds ends past the last date a datetime holds"
            ) from None
    if eta is not None:
        if not isinstance(eta, dt.datetime):
            raise InvalidTaskArguments(f"eta must be a datetime, got {eta!r}")
        if timezone.is_naive(eta) != timezone.is_naive(now):
            wanted = "timezone-aware (USE_TZ is on)" if timezone.is_aware(now) else "naive (USE_TZ is off)"
            raise InvalidTaskArguments(f"eta must be {wanted}, got {eta.isoformat()}")
        return max(eta, now)  # a past eta runs at once
    return now


def tags_text(tags: list[str]) -> str:
    """Return a task's tags as JSON (no tags, the usual case, costs nothing)."""
    # cast: json_text gives None only for None, and ``tags`` is a list.
    return cast(str, json_text(tags)) if tags else "[]"
