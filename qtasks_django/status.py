"""Task statuses."""

from __future__ import annotations

from django.db import models


class TaskStatus(models.TextChoices):
    """The life cycle of a task: ``new → process → success | error | cancel``.

    ``retry`` marks a failed attempt that has a successor.
    """

    NEW = "new", "New"
    PROCESS = "process", "In process"
    SUCCESS = "success", "Success"
    ERROR = "error", "Error"
    CANCEL = "cancel", "Cancelled"
    RETRY = "retry", "Retried"


#: Upstream QTasks' name for the same enum.
TaskStatusEnum = TaskStatus

FINAL_STATUSES = frozenset({TaskStatus.SUCCESS, TaskStatus.ERROR, TaskStatus.CANCEL})
