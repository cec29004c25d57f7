"""Tasks and what they leave behind: their progress items and log lines."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..limits import FLOW_KEY_MAX, QUEUE_NAME_MAX, TASK_NAME_MAX
from ..serialization import ExactJSONEncoder
from ..status import FINAL_STATUSES, TaskStatus


class TaskRecordQuerySet(models.QuerySet["TaskRecord"]):
    """Verbs the queue and the admin use."""

    def ready(self, queues: list[str] | None = None, now: datetime | None = None) -> TaskRecordQuerySet:
        """Return new tasks whose eta has come, in run order (priority, then FIFO).

        Tasks in a paused queue are not ready; tasks behind a concurrency or rate limit
        are (whether their gate is open is the claim's to find out).
        """
        qs = self.filter(status=TaskStatus.NEW, eta__lte=now or timezone.now())
        if queues:
            qs = qs.filter(queue__in=queues)
        qs = qs.exclude(queue__in=PausedQueue.objects.values("queue"))
        return qs.order_by("priority", "created_at")

    def unlimited(self) -> TaskRecordQuerySet:
        """Rows with no concurrency or rate limit (the ones the fast claim takes)."""
        return self.filter(concurrency_key__isnull=True, rate_key__isnull=True)

    def limited(self) -> TaskRecordQuerySet:
        return self.filter(Q(concurrency_key__isnull=False) | Q(rate_key__isnull=False))

    def running(self) -> TaskRecordQuerySet:
        return self.filter(status=TaskStatus.PROCESS)

    def lease_expired(self, now: datetime | None = None) -> TaskRecordQuerySet:
        """Return running tasks whose worker stopped renewing the lease."""
        return self.running().filter(lease_expires_at__lt=now or timezone.now())

    def finished(self) -> TaskRecordQuerySet:
        return self.filter(status__in=[*FINAL_STATUSES, TaskStatus.RETRY])


class TaskRecord(models.Model):
    """One run request of a task and everything that happened to it."""

    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_name = models.CharField(max_length=TASK_NAME_MAX)
    queue = models.CharField(max_length=QUEUE_NAME_MAX, default="default")
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.NEW)
    priority = models.IntegerField(default=0)
    # ExactJSONEncoder: a float stays a float through jsonb (serialization.dumps).
    args = models.JSONField(default=list, blank=True, encoder=ExactJSONEncoder)
    kwargs = models.JSONField(default=dict, blank=True, encoder=ExactJSONEncoder)
    returning = models.JSONField(null=True, blank=True, encoder=ExactJSONEncoder)
    traceback = models.TextField(blank=True, default="")
    cancel_reason = models.TextField(blank=True, default="")
    cancel_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="When a cancel of this running task was asked for."
    )
    tags = models.JSONField(default=list, blank=True)

    retry = models.IntegerField(null=True, blank=True, help_text="Attempts left after this one fails.")
    attempt = models.PositiveIntegerField(default=1)
    retry_parent_uuid = models.UUIDField(null=True, blank=True)
    retry_child_uuid = models.UUIDField(null=True, blank=True)
    parent_uuid = models.UUIDField(null=True, blank=True, help_text="Task that enqueued this one.")

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    eta = models.DateTimeField(default=timezone.now, help_text="Not claimed before this time.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    worker_id = models.CharField(max_length=255, blank=True, default="")
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    rescues = models.PositiveIntegerField(default=0)

    # A schedule's task: which schedule made it, and for which firing (``None`` for a
    # "run now"). A retry keeps the schedule, not the firing.
    schedule = models.ForeignKey(
        "qtasks_django.Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
        db_index=False,  # the partial indexes below serve it; most tasks have no schedule
    )
    scheduled_for = models.DateTimeField(null=True, blank=True, help_text="The firing time it was made for.")

    # Flow control (docs/flow-control.md), written by the enqueue from the task's
    # declaration and enforced by the database: the unique constraint below, and the
    # claim's gates (``queue.gates``). Empty on most rows (NULLs cost no space). The keys
    # are NULL, not "", when absent: the partial indexes and the unique constraint say
    # ``IS NULL``, and NULLs never collide in a unique index.
    unique_key = models.CharField(max_length=FLOW_KEY_MAX, null=True, blank=True)  # noqa: DJ001
    unique_while_running = models.BooleanField(
        default=False, help_text="The key stays taken while the task runs, not only while it waits."
    )
    unique_until = models.DateTimeField(null=True, blank=True, help_text="The key is free again after this.")
    concurrency_key = models.CharField(max_length=FLOW_KEY_MAX, null=True, blank=True)  # noqa: DJ001
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True)
    rate_key = models.CharField(max_length=FLOW_KEY_MAX, null=True, blank=True)  # noqa: DJ001
    rate_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Starts allowed per period.")
    rate_period = models.FloatField(null=True, blank=True, help_text="The rate limit's period, in seconds.")

    objects = TaskRecordQuerySet.as_manager()

    class Meta:
        verbose_name = "task"
        ordering = ["-created_at"]
        indexes = [
            # The claim query: only ready rows, in run order (a queue filter is
            # applied while walking it). Small, because finished rows leave it at once.
            # Rows with a concurrency or rate limit are in the next index instead, so
            # that a limited backlog never lengthens the walk of the unlimited claim.
            models.Index(
                fields=["priority", "created_at"],
                condition=Q(status="new", concurrency_key__isnull=True, rate_key__isnull=True),
                name="qtasks_task_free_idx",
            ),
            models.Index(
                fields=["priority", "created_at"],
                condition=Q(status="new") & (Q(concurrency_key__isnull=False) | Q(rate_key__isnull=False)),
                name="qtasks_task_limited_idx",
            ),
            # The waiting rows of each gate key, for the gated claim's hops from key to
            # key past closed gates (``queue.gate_heads``).
            models.Index(
                fields=["concurrency_key", "priority", "created_at"],
                condition=Q(status="new", concurrency_key__isnull=False),
                name="qtasks_task_concurrency_idx",
            ),
            models.Index(
                fields=["rate_key", "priority", "created_at"],
                condition=Q(status="new", rate_key__isnull=False, concurrency_key__isnull=True),
                name="qtasks_task_rate_key_idx",
            ),
            # The gates: how many run per concurrency key, and the starts of a rate key.
            models.Index(
                fields=["concurrency_key"],
                condition=Q(status="process", concurrency_key__isnull=False),
                name="qtasks_task_running_key_idx",
            ),
            models.Index(
                fields=["rate_key", "-started_at"],
                condition=Q(rate_key__isnull=False, started_at__isnull=False),
                name="qtasks_task_rate_idx",
            ),
            # The rescue sweep scans running rows by lease expiry.
            models.Index(
                fields=["lease_expires_at"], condition=Q(status="process"), name="qtasks_task_lease_idx"
            ),
            # Every index below is written on each enqueue, claim and finish (a status
            # change is never a HOT update), so there are as few as the reads allow, and
            # those only some rows need are partial.
            models.Index(fields=["status", "-created_at"], name="qtasks_task_status_idx"),
            # Pruning and the admin's throughput read only finished rows.
            models.Index(
                fields=["finished_at"],
                condition=Q(finished_at__isnull=False),
                name="qtasks_task_finished_idx",
            ),
            # The admin's changelist, newest first: unfiltered (and its date hierarchy
            # and date filter), or filtered by task name or queue. Each filter walks its
            # index in display order, so a page costs the same on a million rows.
            models.Index(fields=["-created_at"], name="qtasks_task_created_idx"),
            # Pattern operators, so the same index serves the admin's name search
            # (``LIKE 'prefix%'``) whatever the database's collation.
            models.Index(
                fields=["task_name", "-created_at"],
                opclasses=["varchar_pattern_ops", "timestamptz_ops"],
                name="qtasks_task_name_created_idx",
            ),
            models.Index(fields=["queue", "-created_at"], name="qtasks_task_queue_created_idx"),
            # A task's children, in the admin; most tasks have no parent.
            models.Index(
                fields=["parent_uuid"],
                condition=Q(parent_uuid__isnull=False),
                name="qtasks_task_parent_idx",
            ),
            # A schedule's history in the admin, newest first.
            models.Index(
                fields=["schedule", "-created_at"],
                condition=Q(schedule__isnull=False),
                name="qtasks_task_schedule_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=TaskStatus.values), name="qtasks_task_status_valid"
            ),
            # One task per firing, whatever a worker's compare-and-set missed.
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"],
                condition=Q(schedule__isnull=False, scheduled_for__isnull=False),
                name="qtasks_task_one_per_firing",
            ),
            # One task per unique key while it waits (or runs, if it says so): two
            # enqueues racing from any processes cannot both write one.
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=Q(unique_key__isnull=False)
                & (Q(status="new") | Q(status="process", unique_while_running=True)),
                name="qtasks_task_unique_key",
            ),
        ]
        # The admin's permissions beyond view: seeing a task's data (which may be
        # personal) and each action that operates on tasks.
        permissions = (
            ("view_task_data", "Can view task arguments, results, tracebacks, progress and logs"),
            ("retry_task", "Can retry a failed or cancelled task"),
            ("cancel_task", "Can cancel a queued or running task"),
            ("run_task_now", "Can run a delayed task now"),
            ("duplicate_task", "Can duplicate a task"),
        )

    def __str__(self) -> str:
        return f"{self.task_name} {self.uuid} [{self.status}]"

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class PausedQueue(models.Model):
    """A queue no worker claims from while its row exists (running tasks finish)."""

    queue = models.CharField(primary_key=True, max_length=QUEUE_NAME_MAX)
    paused_at = models.DateTimeField(default=timezone.now)
    paused_by = models.CharField(max_length=255, blank=True, default="", help_text="Who paused it.")
    reason = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "paused queue"
        ordering = ["queue"]
        permissions = (("pause_queue", "Can pause and resume queues"),)

    def __str__(self) -> str:
        return self.queue


class TaskProgress(models.Model):
    """One numbered item a generator task yielded (after its handler)."""

    task = models.ForeignKey(TaskRecord, on_delete=models.CASCADE, related_name="progress_items")
    seq = models.PositiveIntegerField()
    value = models.JSONField(null=True, encoder=ExactJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["task", "seq"]
        constraints = [models.UniqueConstraint(fields=["task", "seq"], name="qtasks_progress_unique_seq")]

    def __str__(self) -> str:
        return f"#{self.seq}"


class TaskLog(models.Model):
    """A line a task logged through ``ctx.get_logger()``."""

    task = models.ForeignKey(TaskRecord, on_delete=models.CASCADE, related_name="log_lines")
    created_at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=10)
    logger = models.CharField(max_length=255)
    message = models.TextField()

    class Meta:
        ordering = ["task", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.level} {self.message[:60]}"
