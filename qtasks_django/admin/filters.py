"""The tasks list's filters, each answered by an index of the task table, and its search.

Django's default filter for a plain field lists its values with ``SELECT DISTINCT`` over
the whole table; here the choices come from the small tables instead (registered tasks,
workers), and every filter becomes an indexed condition.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest

from ..conf import settings
from ..models import RegisteredTask, Schedule, TaskRecord, WorkerRecord
from ..serialization import parse_uuid


class TaskNameFilter(admin.SimpleListFilter):
    """By task name: every registered task (index ``task_name, created_at``)."""

    title = "task name"
    parameter_name = "task_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = RegisteredTask.objects.order_by("name").values_list("name", flat=True)
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(task_name=value) if value else queryset


class QueueFilter(admin.SimpleListFilter):
    """By queue: the default queue, registered tasks' queues and workers' queues (index ``queue, created_at``)."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        queues = {settings.DEFAULT_QUEUE}
        queues.update(RegisteredTask.objects.values_list("queue", flat=True).distinct())
        for worker_queues in WorkerRecord.objects.values_list("queues", flat=True):
            queues.update(q for q in worker_queues or [] if isinstance(q, str) and q != "*")
        return [(queue, queue) for queue in sorted(queues)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(queue=value) if value else queryset


class TagFilter(admin.SimpleListFilter):
    """By tag: a task's tags are its registration's, so the tag selects task names (indexed).

    This works alike on every database (SQLite has no JSON containment), and never scans
    the JSON of a million rows.
    """

    title = "tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tags: set[str] = set()
        for task_tags in RegisteredTask.objects.values_list("tags", flat=True):
            tags.update(str(tag) for tag in task_tags or [])
        return [(tag, tag) for tag in sorted(tags)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(task_name__in=task_names_tagged(value))


def task_names_tagged(tag: str) -> list[str]:
    """The names of the registered tasks that carry ``tag``."""
    rows = RegisteredTask.objects.values_list("name", "tags")
    return [name for name, tags in rows if tag in (tags or [])]


def search_tasks(
    queryset: QuerySet[TaskRecord], search_term: str, *, in_arguments: bool
) -> QuerySet[TaskRecord]:
    """The tasks a search finds: a uuid its task (primary key), other text the tasks whose
    name starts with it and, ``in_arguments``, those whose arguments contain it."""
    term = search_term.strip()
    if not term:
        return queryset
    key = parse_uuid(term)
    if key is not None:
        return queryset.filter(pk=key)
    match = Q(task_name__startswith=term)
    if in_arguments:
        queryset = queryset.alias(
            args_text=Cast("args", TextField()), kwargs_text=Cast("kwargs", TextField())
        )
        for text in as_in_json(term):
            match |= Q(args_text__icontains=text) | Q(kwargs_text__icontains=text)
    return queryset.filter(match)


def as_in_json(term: str) -> list[str]:
    """``term`` as it reads in the arguments' JSON text: as typed, and escaped.

    The arguments are searched as JSON text, where ``C:\\temp`` is ``C:\\\\temp`` and
    ``say "hi"`` is ``say \\"hi\\"``; SQLite also stores non-ASCII letters as ``\\u00e9``.
    """
    escaped = json.dumps(term, ensure_ascii=False)[1:-1]
    ascii_escaped = json.dumps(term)[1:-1]
    return list(dict.fromkeys((term, escaped, ascii_escaped)))


class ScheduleFilter(admin.SimpleListFilter):
    """By schedule: the tasks one schedule made (index ``schedule, created_at``).

    The value is the schedule's id (``?schedule=3``, the schedule page's "all runs" link);
    anything else is refused with a 400 before a query runs (``params.refused_parameter``).
    """

    title = "schedule"
    parameter_name = "schedule"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in Schedule.objects.order_by("name").values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(schedule_id=int(value)) if value else queryset
