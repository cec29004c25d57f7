"""Workers and the tasks they registered."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from ..limits import QUEUE_NAME_MAX, TASK_NAME_MAX


class WorkerRecord(models.Model):
    """A ``qtasks_worker`` process and its heartbeat."""

    id = models.CharField(primary_key=True, max_length=255)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list)
    concurrency = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "worker"
        ordering = ["-heartbeat_at"]

    def __str__(self) -> str:
        return self.id


class RegisteredTask(models.Model):
    """The persisted metadata of a task's ``TaskExecSchema`` (callables by dotted path)."""

    name = models.CharField(primary_key=True, max_length=TASK_NAME_MAX)
    func = models.CharField(max_length=500, help_text="Dotted path of the task function.")
    priority = models.IntegerField(default=0)
    queue = models.CharField(max_length=QUEUE_NAME_MAX, default="default")
    awaiting = models.BooleanField(default=False)
    generating = models.CharField(max_length=8, blank=True, default="", help_text="'sync', 'async' or empty.")
    echo = models.BooleanField(default=False)
    max_time = models.FloatField(null=True, blank=True)
    retry = models.IntegerField(null=True, blank=True)
    retry_on_exc = models.JSONField(default=list, blank=True)
    decode = models.CharField(max_length=500, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True, default="")
    generate_handler = models.CharField(max_length=500, blank=True, default="")
    executor = models.CharField(max_length=500, blank=True, default="")
    middlewares_before = models.JSONField(default=list, blank=True)
    middlewares_after = models.JSONField(default=list, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    flow = models.JSONField(default=dict, blank=True, help_text="Unique, concurrency and rate options.")
    workers = models.ManyToManyField(WorkerRecord, blank=True, related_name="registered_tasks")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "registered task"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
