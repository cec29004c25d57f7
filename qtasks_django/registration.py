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


def _is_plain(value: Any) -> bool:
    from .serialization import find_non_json

    return find_non_json(value) is None
