"""What the status page shows of a task, as a JSON-ready dict.

The page and its polling endpoint show the same dict: the page renders it once,
then its script fetches it again every half second until the task has ended.
A task that was retried is shown through its latest attempt, so the page of the
first attempt follows the task to its final outcome (as waiting does).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.urls import reverse
from django.utils import timezone

from qtasks_django import app
from qtasks_django.models import TaskRecord
from qtasks_django.status import FINAL_STATUSES, TaskStatus

MAX_ATTEMPTS_SHOWN = 50
MAX_LOG_LINES = 50


def task_status(task_uuid: UUID) -> dict[str, Any] | None:
    """Describe the task ``task_uuid`` and its attempts, children and progress (None if unknown)."""
    record = TaskRecord.objects.filter(uuid=task_uuid).first()
    if record is None:
        return None
    attempts = attempt_chain(record)
    latest = attempts[-1]
    nested = children(attempts)
    return {
        "uuid": str(record.uuid),
        "task_name": record.task_name,
        "call": call_text(record),
        "priority": record.priority,
        "created_at": record.created_at.isoformat(),
        "due_in": _due_in(latest),
        "why": why_waiting(latest),
        **outcome(latest),
        **progress(latest),
        "attempts": [attempt_summary(attempt, latest) for attempt in attempts],
        "logs": log_lines(latest),
        "parent": task_link(_record(record.parent_uuid)),
        "children": [task_link(child) for child in nested],
        # Nothing more will change on the page: the page stops polling.
        "settled": latest.status in FINAL_STATUSES and all(c.status in FINAL_STATUSES for c in nested),
    }


def call_text(record: TaskRecord) -> str:
    """The call as Python-ish text: ``add(2, 3)``, ``greet("ann", loud=true)`` (values as JSON)."""
    parts = [json.dumps(value, ensure_ascii=False) for value in record.args]
    parts += [f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in record.kwargs.items()]
    return f"{record.task_name}({', '.join(parts)})"


def outcome(latest: TaskRecord) -> dict[str, Any]:
    """The status, result or error, and timings of the latest attempt."""
    ended = latest.status in FINAL_STATUSES
    return {
        "status": latest.status,
        "status_label": TaskStatus(latest.status).label,
        "ended": ended,
        "attempt": latest.attempt,
        "result": latest.returning,
        "result_json": json.dumps(latest.returning, indent=2, ensure_ascii=False),
        "error": last_line(latest.traceback),
        "traceback": latest.traceback,
        "cancel_reason": latest.cancel_reason,
        "cancel_requested": latest.cancel_requested_at is not None and not ended,
        "cancellable": latest.status in (TaskStatus.NEW, TaskStatus.PROCESS)
        and latest.cancel_requested_at is None,
        "worker_text": latest.worker_id or "—",
        "started_at": latest.started_at.isoformat() if latest.started_at else None,
        "finished_at": latest.finished_at.isoformat() if latest.finished_at else None,
        "duration_text": _duration_text(latest),
    }


def progress(latest: TaskRecord) -> dict[str, Any]:
    """The progress items, and a bar when the last one says ``{"done": i, "total": n}``."""
    items = list(latest.progress_items.order_by("seq").values_list("value", flat=True))
    last = items[-1] if items else None
    bar = None
    if isinstance(last, dict) and _is_count(last.get("done")) and _is_count(last.get("total")):
        done, total = last["done"], max(last["total"], 1)
        bar = {"done": last["done"], "total": last["total"], "percent": min(100, round(100 * done / total))}
    return {
        "progress": items,
        "progress_texts": [json.dumps(item, ensure_ascii=False) for item in items],
        "progress_count": f"{len(items)} item{'' if len(items) == 1 else 's'}",
        "progress_bar": bar,
    }


def why_waiting(latest: TaskRecord) -> list[str]:
    """Why a waiting task is not running yet, as ``app.explain`` says it (empty once it started)."""
    if latest.status != TaskStatus.NEW:
        return []
    explanation = app.explain(latest.uuid)
    return [] if explanation is None else [reason.message for reason in explanation.reasons]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def attempt_chain(record: TaskRecord) -> list[TaskRecord]:
    """Every attempt of ``record``'s task, first to latest (retries link them both ways)."""
    first = record
    for _ in range(MAX_ATTEMPTS_SHOWN):
        if first.retry_parent_uuid is None:
            break
        earlier = _record(first.retry_parent_uuid)
        if earlier is None:
            break  # pruned: start from what is left
        first = earlier
    chain = [first]
    while chain[-1].retry_child_uuid is not None and len(chain) < MAX_ATTEMPTS_SHOWN:
        later = _record(chain[-1].retry_child_uuid)
        if later is None:
            break
        chain.append(later)
    return chain


def attempt_summary(attempt: TaskRecord, latest: TaskRecord) -> dict[str, Any]:
    return {
        **task_link(attempt),
        "attempt": attempt.attempt,
        "error": last_line(attempt.traceback),
        "latest": attempt.uuid == latest.uuid,
    }


def children(attempts: list[TaskRecord]) -> list[TaskRecord]:
    """The tasks enqueued from inside any attempt (nested tasks), oldest first."""
    uuids = [attempt.uuid for attempt in attempts]
    return list(TaskRecord.objects.filter(parent_uuid__in=uuids).order_by("created_at")[:MAX_ATTEMPTS_SHOWN])


def task_link(record: TaskRecord | None) -> dict[str, Any] | None:
    """Enough of another task to list it and link to its status page."""
    if record is None:
        return None
    return {
        "uuid": str(record.uuid),
        "task_name": record.task_name,
        "status": record.status,
        "status_label": TaskStatus(record.status).label,
        "url": reverse("demo:task-status", args=[record.uuid]),
    }


def log_lines(record: TaskRecord) -> list[dict[str, str]]:
    """The task's last ``MAX_LOG_LINES`` log lines, oldest first."""
    lines = list(record.log_lines.order_by("-created_at", "-pk")[:MAX_LOG_LINES])[::-1]
    return [{"level": line.level, "logger": line.logger, "message": line.message} for line in lines]


def last_line(text: str) -> str:
    """The last line of a traceback: the exception and its message."""
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""


def _record(task_uuid: UUID | None) -> TaskRecord | None:
    return None if task_uuid is None else TaskRecord.objects.filter(uuid=task_uuid).first()


def _due_in(record: TaskRecord) -> str:
    """How long a delayed task still waits for its eta (empty once it is due or has run)."""
    seconds = int((record.eta - timezone.now()).total_seconds())
    if record.status != TaskStatus.NEW or seconds <= 0:
        return ""
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


def _duration_text(record: TaskRecord) -> str:
    if record.started_at is None or record.finished_at is None:
        return "—"
    return f"{(record.finished_at - record.started_at).total_seconds():.2f} s"
