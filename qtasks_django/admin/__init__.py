"""The admin of qtasks_django: tasks, registered tasks, workers, schedules, and the dashboard.

Importing this package (the admin's autodiscovery does) registers the four model admins.
"""

from __future__ import annotations

from .registered import RegisteredTaskAdmin
from .schedules import ScheduleAdmin
from .tasks import TaskRecordAdmin
from .workers import WorkerRecordAdmin

__all__ = ["RegisteredTaskAdmin", "ScheduleAdmin", "TaskRecordAdmin", "WorkerRecordAdmin"]
