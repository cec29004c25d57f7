"""qtasks_django: the QTasks task model as a Django app, with the database as the record.

Importing this package never touches settings or the database, so it is safe in
``INSTALLED_APPS`` and in any ``tasks.py``.
"""

from __future__ import annotations

from .context import TaskContext
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
from .executors import BaseTaskExecutor, TaskExecutor
from .middleware import TaskMiddleware
from .registry import AsyncRouter, BaseRouter, QueueTasks, SyncRouter, get_app, shared_task
from .registry import default_app as app
from .results import AsyncResult, SyncResult, TaskResult
from .schemas import Task, TaskExecSchema
from .status import TaskStatus, TaskStatusEnum
from .task import AsyncTask, AsyncTaskCls, BaseTask, BaseTaskCls, SyncTask, SyncTaskCls

__version__ = "0.1.0"

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
