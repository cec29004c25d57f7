"""The admin of qtasks_django: tasks, registered tasks, workers, and the dashboard.

Importing this package (the admin's autodiscovery does) registers the three model admins.
"""

from __future__ import annotations

from .registered import RegisteredTaskAdmin
from .tasks import TaskRecordAdmin
from .workers import WorkerRecordAdmin

__all__ = ["RegisteredTaskAdmin", "TaskRecordAdmin", "WorkerRecordAdmin"]
