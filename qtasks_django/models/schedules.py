"""Schedules: a task enqueued at cron times or intervals, fired by whichever worker comes first."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from ..limits import QUEUE_NAME_MAX, TASK_NAME_MAX
from ..serialization import ExactJSONEncoder

#: A schedule's name: an identifier in code and settings, a label in the admin.
SCHEDULE_NAME_MAX = 200


class MissedRuns(models.TextChoices):
    """What a worker does with firings nobody made (every worker was down)."""

    ONCE = "once", "Run once for the missed window"
    ALL = "all", "Run every missed firing (bounded)"
    SKIP = "skip", "Skip missed firings"


class ScheduleOrigin(models.TextChoices):
    """Where a schedule is declared, and so who may change it."""

    CODE = "code", "Task decorator"
    SETTINGS = "settings", "QTASKS['SCHEDULES']"
    ADMIN = "admin", "Admin"


class Schedule(models.Model):
    """When to enqueue a task, with which arguments, and what was fired last.

    ``next_fire_at`` is the firing a worker makes next. A worker fires it by moving
    ``next_fire_at`` on with a compare-and-set UPDATE in the transaction that inserts
    the task, so one firing is made once however many workers see it due; a unique
    constraint on the task's ``(schedule, scheduled_for)`` backs that up.
    """

    name = models.CharField(max_length=SCHEDULE_NAME_MAX, unique=True)
    task_name = models.CharField(max_length=TASK_NAME_MAX)
    cron = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="A cron expression such as '0 3 * * *', or '@daily'.",
    )
    interval = models.DurationField(null=True, blank=True, help_text="Or a fixed interval of real time.")
    timezone = models.CharField(max_length=64, help_text="The IANA time zone the cron expression reads in.")
    args = models.JSONField(default=list, blank=True, encoder=ExactJSONEncoder)
    kwargs = models.JSONField(default=dict, blank=True, encoder=ExactJSONEncoder)
    queue = models.CharField(
        max_length=QUEUE_NAME_MAX, blank=True, default="", help_text="Empty: the task's own queue."
    )
    priority = models.IntegerField(null=True, blank=True, help_text="Empty: the task's own priority.")
    missed_runs = models.CharField(max_length=8, choices=MissedRuns.choices, default=MissedRuns.ONCE)
    enabled = models.BooleanField(default=True)
    origin = models.CharField(max_length=8, choices=ScheduleOrigin.choices, default=ScheduleOrigin.ADMIN)
    removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the schedule left the code or settings that declared it."
    )
    next_fire_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(
        null=True, blank=True, help_text="The firing time of the last task made."
    )
    last_task_uuid = models.UUIDField(null=True, blank=True)
    last_error = models.TextField(
        blank=True,
        default="",
        help_text="Why the last firing made no task (arguments that no longer bind, say).",
    )
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]
        indexes = [
            # The worker's "when is the next firing" and "which are due": enabled ones only.
            models.Index(fields=["next_fire_at"], condition=Q(enabled=True), name="qtasks_schedule_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(cron="") & Q(interval__isnull=False)) | (~Q(cron="") & Q(interval__isnull=True)),
                name="qtasks_schedule_cron_or_interval",
            ),
            models.CheckConstraint(
                condition=Q(missed_runs__in=MissedRuns.values), name="qtasks_schedule_missed_runs_valid"
            ),
            models.CheckConstraint(
                condition=Q(origin__in=ScheduleOrigin.values), name="qtasks_schedule_origin_valid"
            ),
        ]
        permissions = (("run_schedule_now", "Can run a schedule's task now"),)

    def __str__(self) -> str:
        return self.name
