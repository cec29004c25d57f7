"""The Django tasks this process knows, by dotted path (the name their rows carry)."""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

from .compat import Task

#: Dotted path → the Django task first validated under it (its defaults).
known_tasks: dict[str, Task[..., Any]] = {}


def remember(task: Task[..., Any]) -> None:
    known_tasks.setdefault(task.module_path, task)


def django_task(name: str) -> Task[..., Any] | None:
    """Return the Django task registered as ``name``, importing its module if this process has not."""
    task = known_tasks.get(name)
    if task is not None:
        return task
    try:
        found = import_string(name)
    except ImportError:
        return None
    return found if isinstance(found, Task) else None
