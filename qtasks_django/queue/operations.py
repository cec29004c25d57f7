"""Operations on task records that the admin runs for a user: retry, run now, duplicate, cancel.

Each is one short transaction that acts at most once for the same request however often
it is repeated (a double-submitted form, two operators at once), and returns an
``OperationResult`` saying what happened. Cancel is the queue's own
(``DatabaseQueue.cancel``, which ``app.cancel`` calls too); ``cancel_task`` only turns
its answer into an ``OperationResult``.
"""

from __future__ import annotations

import uuid as uuid_lib
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import notifiers
from ..models import TaskRecord
from ..serialization import parse_uuid
from ..status import TaskStatus
from . import unique
from .store import DB, DatabaseQueue
from .unique import FLOW_FIELDS

#: Statuses a task can be retried from: it ended and nothing runs it again by itself.
RETRYABLE_STATUSES = (TaskStatus.ERROR, TaskStatus.CANCEL)
#: The fields a retry or a duplicate copies from the original task (a schedule's task
#: stays in its schedule's history; the firing time is the original's alone).
COPIED_FIELDS = (
    "task_name",
    "queue",
    "priority",
    "args",
    "kwargs",
    "tags",
    "retry",
    "parent_uuid",
    "schedule_id",
    # Its flow control: a copy waits behind the same limits and holds the same unique key.
    *FLOW_FIELDS,
)


@dataclass(frozen=True, kw_only=True)
class OperationResult:
    """What an operation did."""

    acted: bool
    """Whether it changed anything (False: refused, or already done by an earlier request)."""
    message: str
    """A sentence for the user, naming what happened or why nothing did."""
    task_uuid: uuid_lib.UUID | None = None
    """The task the operation made (retry, duplicate) or changed (run now, cancel)."""


def retry_task(uuid: Any, *, using: str = DB) -> OperationResult:
    """Run a failed or cancelled task again as a new attempt linked to it.

    The new task (status ``new``, runs at once) copies the original's name, queue,
    priority, arguments, tags and attempts left; ``attempt`` is one more, and the two are
    linked both ways (``retry_parent_uuid`` / ``retry_child_uuid``). The original keeps
    its status. A task already retried is refused, so a repeated request acts once.
    """
    key = parse_uuid(uuid)
    if key is None:
        return OperationResult(acted=False, message="There is no such task.")
    rows = TaskRecord.objects.using(using)
    child_uuid = uuid_lib.uuid4()
    now = timezone.now()
    with transaction.atomic(using=using):
        # The conditional UPDATE decides: of two concurrent retries of one task, the
        # second waits for the first's row lock, then finds the link set and updates nothing.
        linked = rows.filter(pk=key, status__in=RETRYABLE_STATUSES, retry_child_uuid__isnull=True).update(
            retry_child_uuid=child_uuid, updated_at=now
        )
        if not linked:
            return _why_not_retried(rows.filter(pk=key).first())
        original = rows.get(pk=key)
        child, holder = unique.create(
            using=using,
            uuid=child_uuid,
            **_copy(original),
            attempt=original.attempt + 1,
            retry_parent_uuid=original.pk,
            created_at=now,
            updated_at=now,
            eta=now,
        )
        if child is None:
            transaction.set_rollback(True, using=using)  # the link too: the task can be retried later
            return _already_holding(holder)
        _wake_workers(child.queue, using)
    return OperationResult(acted=True, message=f"Retried as attempt {child.attempt}.", task_uuid=child.pk)


def _already_holding(holder: TaskRecord | None) -> OperationResult:
    assert holder is not None
    return OperationResult(
        acted=False,
        message=f"Task {holder.pk} holds the same unique key and is {holder.get_status_display()}; nothing was made.",
        task_uuid=holder.pk,
    )


def _why_not_retried(record: TaskRecord | None) -> OperationResult:
    if record is None:
        return OperationResult(acted=False, message="There is no such task.")
    if record.retry_child_uuid is not None:
        return OperationResult(
            acted=False, message="This task was already retried.", task_uuid=record.retry_child_uuid
        )
    return OperationResult(
        acted=False,
        message=f"Only a failed or cancelled task can be retried; this one is {record.get_status_display()}.",
    )


def run_task_now(uuid: Any, *, using: str = DB) -> OperationResult:
    """Make a waiting task whose ``eta`` is in the future due now, and wake the workers."""
    key = parse_uuid(uuid)
    if key is None:
        return OperationResult(acted=False, message="There is no such task.")
    rows = TaskRecord.objects.using(using)
    now = timezone.now()
    with transaction.atomic(using=using):
        moved = rows.filter(pk=key, status=TaskStatus.NEW, eta__gt=now).update(eta=now, updated_at=now)
        record = rows.filter(pk=key).only("queue", "status").first()
        if moved:
            # This transaction has just updated the row and holds its lock: it is there.
            assert record is not None
            _wake_workers(record.queue, using)
    if moved:
        return OperationResult(
            acted=True, message="The task is due now; a worker picks it up next.", task_uuid=key
        )
    if record is None:
        return OperationResult(acted=False, message="There is no such task.")
    if record.status == TaskStatus.NEW:
        return OperationResult(acted=False, message="The task is already due; it runs when a worker is free.")
    return OperationResult(
        acted=False, message=f"Only a waiting task can be run now; this one is {record.get_status_display()}."
    )


def duplicate_task(uuid: Any, *, new_uuid: Any = None, using: str = DB) -> OperationResult:
    """Enqueue a fresh copy of a task (same name, queue, priority, arguments, tags), not linked to it.

    ``new_uuid`` is the copy's uuid, chosen by the caller once per request (the admin puts
    one in its form): repeating the request with the same ``new_uuid`` makes no second copy.
    """
    key = parse_uuid(uuid)
    copy_uuid = parse_uuid(new_uuid) if new_uuid is not None else uuid_lib.uuid4()
    if copy_uuid is None:
        return OperationResult(acted=False, message="The request is malformed (the copy's id is not a uuid).")
    if key is None:
        return OperationResult(acted=False, message="There is no such task.")
    rows = TaskRecord.objects.using(using)
    original = rows.filter(pk=key).first()
    if original is None:
        return OperationResult(acted=False, message="There is no such task.")
    now = timezone.now()
    try:
        with transaction.atomic(using=using):
            copy, holder = unique.create(
                using=using, uuid=copy_uuid, **_copy(original), created_at=now, updated_at=now, eta=now
            )
            if copy is None:
                return _already_holding(holder)
            _wake_workers(copy.queue, using)
    except IntegrityError:
        # The primary key says this request was already served.
        return OperationResult(acted=False, message="This task was already duplicated.", task_uuid=copy_uuid)
    return OperationResult(acted=True, message="Duplicated as a new task.", task_uuid=copy.pk)


def cancel_task(uuid: Any, reason: str = "", *, using: str = DB) -> OperationResult:
    """Cancel a waiting task at once, or ask the worker running it to stop."""
    key = parse_uuid(uuid)
    if key is None:
        return OperationResult(acted=False, message="There is no such task.")
    answer = DatabaseQueue(using).cancel(key, reason)
    if answer == TaskStatus.CANCEL:
        return OperationResult(acted=True, message="Cancelled; the task will not run.", task_uuid=key)
    if answer == TaskStatus.PROCESS:
        return OperationResult(
            acted=True, message="Cancel requested; the worker running the task stops it.", task_uuid=key
        )
    return OperationResult(acted=False, message="Nothing to cancel: the task has ended or does not exist.")


def _copy(original: TaskRecord) -> dict[str, Any]:
    return {name: getattr(original, name) for name in COPIED_FIELDS}


def _wake_workers(queue: str, using: str) -> None:
    notifiers.get_notifier(using).send_on_commit(notifiers.ENQUEUED, queue)
