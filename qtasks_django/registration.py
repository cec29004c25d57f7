"""Persist registered tasks' ``TaskExecSchema`` metadata so the admin and other processes see it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from .conf import settings
from .definition import dotted_path

if TYPE_CHECKING:
    from .registry import QueueTasks
    from .schemas import TaskExecSchema


def schema_metadata(schema: TaskExecSchema) -> dict[str, Any]:
    """Return the schema's metadata as model fields (callables as dotted paths)."""
    return {
        "func": dotted_path(schema.func),
        "priority": schema.priority,
        "queue": schema.queue or settings.DEFAULT_QUEUE,
        "awaiting": schema.awaiting,
        "generating": schema.generating or "",
        "echo": schema.echo,
        "max_time": schema.max_time,
        "retry": schema.retry,
        "retry_on_exc": [dotted_path(e) for e in schema.retry_on_exc or []],
        "decode": dotted_path(schema.decode),
        "tags": list(schema.tags or []),
        "description": schema.description or "",
        "generate_handler": dotted_path(schema.generate_handler),
        "executor": dotted_path(schema.executor),
        "middlewares_before": [dotted_path(m) for m in schema.middlewares_before],
        "middlewares_after": [dotted_path(m) for m in schema.middlewares_after],
        "extra": {k: v if _is_plain(v) else repr(v) for k, v in schema.extra.items()},
    }


def persist_registered_tasks(app: QueueTasks, *, worker_id: str | None = None) -> int:
    """Upsert one ``RegisteredTask`` row per task of ``app``; link them to the worker."""
    from .models import RegisteredTask

    with transaction.atomic():
        for name, schema in app.tasks.items():
            row, _ = RegisteredTask.objects.update_or_create(name=name, defaults=schema_metadata(schema))
            if worker_id:
                row.workers.add(worker_id)
    return len(app.tasks)


def sync_registered_tasks(app: QueueTasks | None = None) -> int:
    """Store this process's tasks of ``app`` (default: the configured app) where they differ.

    Reads the rows once and writes only the tasks that are missing or whose metadata
    changed, so calling it on every view of a page costs one query when nothing did.
    Returns how many rows were written. Links to workers are left as they are.
    """
    from .models import RegisteredTask
    from .registry import get_app

    wanted = {name: schema_metadata(schema) for name, schema in (app or get_app()).tasks.items()}
    rows = {row.name: row for row in RegisteredTask.objects.filter(name__in=list(wanted))}
    missing = [RegisteredTask(name=name, **meta) for name, meta in wanted.items() if name not in rows]
    changed = [_updated(rows[name], meta) for name, meta in wanted.items() if name in rows]
    changed = [row for row in changed if row is not None]
    if missing or changed:
        fields = [*next(iter(wanted.values())).keys(), "updated_at"]
        with transaction.atomic():
            RegisteredTask.objects.bulk_create(
                missing, ignore_conflicts=True
            )  # a worker may insert it meanwhile
            RegisteredTask.objects.bulk_update(changed, fields)
    return len(missing) + len(changed)


def _updated(row: Any, meta: dict[str, Any]) -> Any:
    """``row`` with ``meta`` applied if any value differs, else ``None``."""
    from django.utils import timezone

    if all(getattr(row, field) == value for field, value in meta.items()):
        return None
    for field, value in meta.items():
        setattr(row, field, value)
    row.updated_at = timezone.now()
    return row


def _is_plain(value: Any) -> bool:
    from .serialization import find_non_json

    return find_non_json(value) is None
