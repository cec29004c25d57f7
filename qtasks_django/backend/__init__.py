"""Django's Tasks framework (``django.tasks``, DEP 14) on ``qtasks_worker``.

``TASKS = {"default": {"BACKEND": "qtasks_django.backend.QTasksBackend"}}`` makes every
``@django.tasks.task`` function a QTasks task: enqueued in the caller's transaction, run
by ``qtasks_worker``, shown in the admin. Importing this package imports ``django.tasks``
(Django 6.0 and later).
"""

from __future__ import annotations

from .backend import QTasksBackend
from .task import QTasksTask, task

__all__ = ["QTasksBackend", "QTasksTask", "task"]
