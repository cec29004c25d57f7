"""qtasks_django: the QTasks task model as a Django app, with the database as the record.

Importing this package never touches settings or the database, so it is safe in
``INSTALLED_APPS`` and in any ``tasks.py``. This module is the public face: everything
a user imports is here. ``docs/architecture.md`` maps the floors behind it.
"""

from __future__ import annotations

from typing import Any

from .exceptions import (
    DuplicateTaskName,
    InvalidTaskArguments,
    InvalidTaskDefinition,
    PayloadTooLarge,
    QTasksError,
    ResultNotSerializable,
    TaskCancelError,
    TaskNotRegistered,
    TaskPluginTriggerError,
    TaskTimeoutError,
    WorkerLost,
)
from .status import TaskStatus, TaskStatusEnum
from .tasks.app import AsyncRouter, BaseRouter, QueueTasks, SyncRouter, get_app, shared_task
from .tasks.app import default_app as app
from .tasks.context import TaskContext
from .tasks.definition import TaskExecSchema
from .tasks.executors import BaseTaskExecutor, TaskExecutor
from .tasks.middleware import TaskMiddleware
from .tasks.results import AsyncResult, SyncResult, Task, TaskResult
from .tasks.task import AsyncTask, AsyncTaskCls, BaseTask, BaseTaskCls, SyncTask, SyncTaskCls

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Give ``from qtasks_django import operations`` the admin's operations (retry, run now, ...)."""
    if name == "operations":
        # Imported on first use: the operations import the models, and this package is
        # imported before Django's apps are ready.
        from .queue import operations

        return operations
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AsyncResult",
    "AsyncRouter",
    "AsyncTask",
    "AsyncTaskCls",
    "BaseRouter",
    "BaseTask",
    "BaseTaskCls",
    "BaseTaskExecutor",
    "DuplicateTaskName",
    "InvalidTaskArguments",
    "InvalidTaskDefinition",
    "PayloadTooLarge",
    "QTasksError",
    "QueueTasks",
    "ResultNotSerializable",
    "SyncResult",
    "SyncRouter",
    "SyncTask",
    "SyncTaskCls",
    "Task",
    "TaskCancelError",
    "TaskContext",
    "TaskExecSchema",
    "TaskExecutor",
    "TaskMiddleware",
    "TaskNotRegistered",
    "TaskPluginTriggerError",
    "TaskResult",
    "TaskStatus",
    "TaskStatusEnum",
    "TaskTimeoutError",
    "WorkerLost",
    "app",
    "get_app",
    "shared_task",
]
