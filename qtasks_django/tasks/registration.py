"""Registered tasks' ``TaskExecSchema`` metadata, stored so the admin and other processes see it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..conf import settings
from ..serialization import find_non_json
from .app import QueueTasks, get_app
from .definition import TaskExecSchema, dotted_path

if TYPE_CHECKING:
    from collections.abc import Mapping


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
        "flow": schema.flow.describe(),
        "extra": {k: v if find_non_json(v) is None else repr(v) for k, v in schema.extra.items()},
    }


def app_metadata(app: QueueTasks) -> Mapping[str, dict[str, Any]]:
    """Return name → metadata of every task of ``app``."""
    return {name: schema_metadata(schema) for name, schema in app.tasks.items()}


def persist_registered_tasks(app: QueueTasks, *, worker_id: str | None = None) -> int:
    """Upsert one ``RegisteredTask`` row per task of ``app``; link them to the worker."""
    return app.queue.persist_registered(app_metadata(app), worker_id=worker_id)


def sync_registered_tasks(app: QueueTasks | None = None) -> int:
    """Store this process's tasks of ``app`` (default: the configured app) where they differ.

    Writes only the tasks that are missing or whose metadata changed, so calling it on
    every view of a page costs one query when nothing did. Returns how many rows were
    written. Links to workers are left as they are.
    """
    app = app or get_app()
    return app.queue.sync_registered(app_metadata(app))
