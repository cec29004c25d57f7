"""Unique tasks: write a row unless a task already holds its unique key.

The partial unique constraint ``qtasks_task_unique_key`` decides, not a read before the
write: of two enqueues racing from any processes, one writes and the other finds the
first (PostgreSQL makes the second wait for the first's transaction to end). It all
happens in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..exceptions import QTasksError
from ..models import TaskRecord
from ..status import TaskStatus
from .rows import NewRow

#: The flow-control columns a retry or a copy of a task keeps.
FLOW_FIELDS = (
    "unique_key",
    "unique_while_running",
    "unique_until",
    "concurrency_key",
    "concurrency_limit",
    "rate_key",
    "rate_limit",
    "rate_period",
)
#: A holder can end between our refused write and our read of it; then we write again.
ATTEMPTS = 5


#: The rows that hold their unique key: the predicate of the constraint ``qtasks_task_unique_key``.
HOLDS_KEY = Q(status=TaskStatus.NEW) | Q(status=TaskStatus.PROCESS, unique_while_running=True)


def holding(key: str, *, using: str) -> TaskRecord | None:
    """Return the task that holds ``key`` now (waiting, or running with ``unique_while_running``)."""
    return TaskRecord.objects.using(using).filter(HOLDS_KEY, unique_key=key).first()


def insert_many(
    rows: list[NewRow],
    write_many: Callable[[list[NewRow]], set[Any]],
    write_one: Callable[[NewRow], bool],
    *,
    using: str,
) -> None:
    """Write many unique rows at once (``write_many`` returns the uuids it wrote); a row whose key
    is held gets its holder as ``existing``. Two rows with one key: the first is written and
    the second gets it. The rare rest (a holder that ended or whose hold ran out in between)
    goes through ``insert`` one by one."""
    written = write_many(rows)
    refused = [row for row in rows if row.uuid not in written]
    if not refused:
        return
    keys = {row.unique_key for row in refused}
    holders = {
        r.unique_key: r for r in TaskRecord.objects.using(using).filter(HOLDS_KEY, unique_key__in=keys)
    }
    now = timezone.now()
    for row in refused:
        holder = holders.get(row.unique_key)
        if holder is None or (holder.unique_until is not None and holder.unique_until <= now):
            insert(row, write_one, using=using)
        else:
            row.existing = holder


def insert(row: NewRow, write: Callable[[NewRow], bool], *, using: str) -> None:
    """Write ``row`` with ``write`` (``False``: a unique constraint refused it), or set
    ``row.existing`` to the task holding its key."""
    key = row.unique_key
    assert key is not None
    for _attempt in range(ATTEMPTS):
        if write(row):
            return
        holder = holding(key, using=using)
        if holder is None:
            continue  # it ended in between: the key is free, write again
        if holder.unique_until is not None and holder.unique_until <= timezone.now():
            # Its hold has run out (``unique_for``): the key passes to the new row.
            TaskRecord.objects.using(using).filter(pk=holder.pk, unique_key=key).update(unique_key=None)
            continue
        row.existing = holder
        return
    raise QTasksError(f"the unique key {key!r} kept changing hands; the task was not enqueued")


def create(*, using: str, **fields: Any) -> tuple[TaskRecord | None, TaskRecord | None]:
    """Create a copied row (a retry, a duplicate); return ``(row, None)``, or ``(None, holder)``
    when a task holding its unique key is already waiting (the copy would be that task again).

    In a savepoint: a refused copy leaves the caller's transaction usable.
    """
    key = fields.get("unique_key")
    try:
        with transaction.atomic(using=using):
            return TaskRecord.objects.using(using).create(**fields), None
    except IntegrityError:
        holder = None if key is None else holding(key, using=using)
        if holder is None:
            raise
        return None, holder
