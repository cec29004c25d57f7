"""The record: tasks, their progress and logs, workers, registered tasks and schedules."""

from __future__ import annotations

from .schedules import MissedRuns, Schedule, ScheduleOrigin
from .tasks import PausedQueue, TaskLog, TaskProgress, TaskRecord, TaskRecordQuerySet
from .workers import RegisteredTask, WorkerRecord

__all__ = [
    "MissedRuns",
    "PausedQueue",
    "RegisteredTask",
    "Schedule",
    "ScheduleOrigin",
    "TaskLog",
    "TaskProgress",
    "TaskRecord",
    "TaskRecordQuerySet",
    "WorkerRecord",
]
