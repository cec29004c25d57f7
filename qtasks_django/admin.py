"""A basic, read-only admin: tasks with status, arguments, result and traceback."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from .models import RegisteredTask, TaskRecord, WorkerRecord


def _pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, default=str))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records are written by the queue and workers only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


@admin.register(TaskRecord)
class TaskRecordAdmin(ReadOnlyAdmin):
    list_display = ["task_name", "status", "priority", "queue", "attempt", "created_at", "finished_at", "short_uuid"]
    list_filter = ["status", "queue", "task_name", "created_at"]
    search_fields = ["uuid", "task_name", "worker_id"]
    date_hierarchy = "created_at"
    list_per_page = 50
    fields = ["uuid", "task_name", "status", "priority", "queue", "pretty_args", "pretty_kwargs", "pretty_returning",
              "traceback_block", "cancel_reason", "retry", "attempt", "retry_parent_uuid", "retry_child_uuid",
              "parent_uuid", "tags", "created_at", "eta", "started_at", "finished_at", "worker_id", "rescues",
              "progress", "log"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.fields

    @admin.display(description="uuid")
    def short_uuid(self, obj: TaskRecord) -> str:
        return str(obj.uuid)[:8]

    @admin.display(description="args")
    def pretty_args(self, obj: TaskRecord) -> str:
        return _pretty(obj.args)

    @admin.display(description="kwargs")
    def pretty_kwargs(self, obj: TaskRecord) -> str:
        return _pretty(obj.kwargs)

    @admin.display(description="result")
    def pretty_returning(self, obj: TaskRecord) -> str:
        return _pretty(obj.returning)

    @admin.display(description="traceback")
    def traceback_block(self, obj: TaskRecord) -> str:
        return format_html("<pre>{}</pre>", obj.traceback) if obj.traceback else "-"

    @admin.display(description="progress items")
    def progress(self, obj: TaskRecord) -> str:
        items = obj.progress_items.all()
        return format_html_join("", "<div>#{}: <code>{}</code></div>", ((i.seq, json.dumps(i.value)) for i in items)) or "-"

    @admin.display(description="log")
    def log(self, obj: TaskRecord) -> str:
        lines = obj.log_lines.all()
        return format_html_join("", "<div>{} {} {}</div>", ((ln.created_at, ln.level, ln.message) for ln in lines)) or "-"


@admin.register(RegisteredTask)
class RegisteredTaskAdmin(ReadOnlyAdmin):
    list_display = ["name", "func", "priority", "queue", "awaiting", "generating", "echo", "retry", "max_time", "updated_at"]
    search_fields = ["name", "func", "description"]
    list_filter = ["queue", "awaiting", "echo"]


@admin.register(WorkerRecord)
class WorkerRecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "host", "pid", "concurrency", "queues", "started_at", "heartbeat_at", "stopped_at"]
    search_fields = ["id", "host"]
