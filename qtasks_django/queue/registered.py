"""Registered-task rows: each task's ``TaskExecSchema`` metadata, so the admin and other
processes see what is registered, where, and by which workers.

The task floor turns its schemas into plain field values (``tasks.registration``); this
module only writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..models import RegisteredTask


def persist(metadata: Mapping[str, dict[str, Any]], *, worker_id: str | None, using: str) -> int:
    """Upsert one ``RegisteredTask`` row per name; link them to the worker ``worker_id``."""
    with transaction.atomic(using=using):
        for name, fields in metadata.items():
            row, _ = RegisteredTask.objects.using(using).update_or_create(name=name, defaults=fields)
            if worker_id:
                # django-stubs take a pk only as an int; WorkerRecord's pk is its string id.
                row.workers.add(worker_id)  # type: ignore[arg-type]
    return len(metadata)


def sync(metadata: Mapping[str, dict[str, Any]], *, using: str) -> int:
    """Write the rows that are missing or whose metadata changed; return how many.

    Reads the rows once, so calling it on every view of a page costs one query when
    nothing changed. Links to workers are left as they are.
    """
    rows = {row.name: row for row in RegisteredTask.objects.using(using).filter(name__in=list(metadata))}
    missing = [RegisteredTask(name=name, **fields) for name, fields in metadata.items() if name not in rows]
    changed = [
        row
        for row in (_updated(rows[name], fields) for name, fields in metadata.items() if name in rows)
        if row is not None
    ]
    if missing or changed:
        columns = [*next(iter(metadata.values())).keys(), "updated_at"]
        with transaction.atomic(using=using):
            # A worker may insert the same row meanwhile.
            RegisteredTask.objects.using(using).bulk_create(missing, ignore_conflicts=True)
            RegisteredTask.objects.using(using).bulk_update(changed, columns)
    return len(missing) + len(changed)


def _updated(row: RegisteredTask, fields: dict[str, Any]) -> RegisteredTask | None:
    """``row`` with ``fields`` applied if any value differs, else ``None``."""
    if all(getattr(row, name) == value for name, value in fields.items()):
        return None
    for name, value in fields.items():
        setattr(row, name, value)
    row.updated_at = timezone.now()
    return row
