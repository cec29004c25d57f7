"""Exceptions raised by qtasks_django."""

from __future__ import annotations

from typing import Any


class QTasksError(Exception):
    """Base class of every qtasks_django error."""


class TaskNotRegistered(QTasksError, LookupError):
    """The task name is not registered with the app."""


class DuplicateTaskName(QTasksError, ValueError):
    """A task name was registered twice."""


class InvalidTaskArguments(QTasksError, TypeError):
    """The arguments do not bind to the task's signature or are not JSON."""


class PayloadTooLarge(QTasksError, ValueError):
    """The encoded arguments exceed ``QTASKS["MAX_PAYLOAD_BYTES"]``."""


class InvalidTaskDefinition(QTasksError, TypeError):
    """A decorator parameter has the wrong type or value."""


class ResultNotSerializable(QTasksError, TypeError):
    """The task's (decoded) result cannot be stored as JSON."""


class TaskCancelError(RuntimeError):
    """Raised inside a task to cancel it; the task ends with status ``cancel``."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class TaskPluginTriggerError(QTasksError):
    """Raised by ``ctx.plugin_error()``; plugin-error handlers may turn it into a result."""

    def __init__(self, message: str = "plugin error", **kwargs: Any) -> None:
        super().__init__(message)
        self.kwargs = kwargs


class TaskTimeoutError(QTasksError, TimeoutError):
    """The task ran past its ``max_time``."""


class LeaseLost(QTasksError):
    """This run no longer holds its task (it was rescued elsewhere or released): it must stop writing."""


class TaskProcessDied(QTasksError):
    """The child process running a sync task exited before it answered (``os._exit``, a crash)."""


class WorkerLost(QTasksError):
    """The worker running the task disappeared too many times (poison pill)."""


class InvalidSchedule(QTasksError, ValueError):
    """A schedule that cannot fire: a bad cron expression or zone, an unknown task, arguments that do not bind."""
