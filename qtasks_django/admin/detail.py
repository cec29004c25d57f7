"""The parts of a task's detail page: attempts, related tasks, progress, log lines, worker."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import Schedule, TaskLog, TaskProgress, TaskRecord, WorkerRecord
from ..status import TaskStatus
from .common import APP_LABEL, compact_json, format_age, format_time, status_badge, task_link
from .stats import worker_is_alive

#: Attempts shown either side of a task in its retry chain (a chain is short; this bounds a broken one).
MAX_CHAIN = 50
#: Nested tasks, progress items and log lines shown on the page (the newest are kept).
MAX_CHILDREN = 50
MAX_PROGRESS_ITEMS = 200
MAX_LOG_LINES = 500

ACTIVE_STATUSES = (TaskStatus.NEW, TaskStatus.PROCESS)
_LINK_FIELDS = ("uuid", "task_name", "status", "attempt", "retry_parent_uuid", "retry_child_uuid")


def retry_chain(record: TaskRecord) -> list[TaskRecord]:
    """Every attempt of the task's chain, first attempt first, ``record`` among them."""
    earlier = _follow(record, "retry_parent_uuid")
    later = _follow(record, "retry_child_uuid")
    return [*reversed(earlier), record, *later]


def _follow(record: TaskRecord, link: str) -> list[TaskRecord]:
    """The attempts reached from ``record`` through ``link``, nearest first (at most ``MAX_CHAIN``)."""
    rows = TaskRecord.objects.only(*_LINK_FIELDS)
    found: list[TaskRecord] = []
    current = record
    while getattr(current, link) and len(found) < MAX_CHAIN:
        step = rows.filter(pk=getattr(current, link)).first()
        if step is None:
            break
        found.append(step)
        current = step
    return found


def render_retry_chain(record: TaskRecord) -> SafeString | str:
    chain = retry_chain(record)
    if len(chain) == 1:
        return "-"
    return format_html(
        '<ol class="qtasks-chain">{}</ol>',
        format_html_join("", "<li>{}</li>", ((_chain_entry(attempt, record),) for attempt in chain)),
    )


def _chain_entry(attempt: TaskRecord, current: TaskRecord) -> SafeString:
    badge = status_badge(attempt.status, attempt.get_status_display())
    if attempt.pk == current.pk:
        return format_html("<strong>attempt {} (this task)</strong> {}", attempt.attempt, badge)
    return format_html("{} {}", task_link(attempt.pk, f"attempt {attempt.attempt}"), badge)


def render_schedule(record: TaskRecord) -> SafeString | str:
    """``<name> (fired for <time>)`` linking to the schedule that made the task."""
    schedule = record.schedule_id and Schedule.objects.only("name").filter(pk=record.schedule_id).first()
    if not schedule:
        return "-"
    url = reverse(f"admin:{APP_LABEL}_schedule_change", args=[schedule.pk])
    when = f"fired for {format_time(record.scheduled_for)}" if record.scheduled_for else "run now"
    return format_html('<a href="{}">{}</a> ({})', url, schedule.name, when)


def render_parent(record: TaskRecord) -> SafeString | str:
    if record.parent_uuid is None:
        return "-"
    parent = TaskRecord.objects.only(*_LINK_FIELDS).filter(pk=record.parent_uuid).first()
    if parent is None:
        return format_html("{} (gone)", record.parent_uuid)
    return _related_entry(parent)


def render_children(record: TaskRecord) -> SafeString | str:
    children = list(
        TaskRecord.objects.only(*_LINK_FIELDS)
        .filter(parent_uuid=record.pk)
        .order_by("created_at")[: MAX_CHILDREN + 1]
    )
    if not children:
        return "-"
    entries = format_html_join(
        "", "<li>{}</li>", ((_related_entry(child),) for child in children[:MAX_CHILDREN])
    )
    more = ""
    if len(children) > MAX_CHILDREN:
        url = reverse(f"admin:{APP_LABEL}_taskrecord_changelist") + f"?parent_uuid={record.pk}"
        more = format_html('<li><a href="{}">all nested tasks…</a></li>', url)
    return format_html('<ul class="qtasks-related">{}{}</ul>', entries, more)


def _related_entry(task: TaskRecord) -> SafeString:
    return format_html(
        "{} {} {}", task_link(task.pk), task.task_name, status_badge(task.status, task.get_status_display())
    )


def progress_fraction(value: Any) -> float | None:
    """The share done that a progress item states, if it states one.

    A generator (or its handler) drives the bar by yielding ``{"done": 3, "total": 10}``
    (``"of"`` works for ``"total"``) or ``{"percent": 30}``; any other value counts as a
    step of unknown total.
    """
    if not isinstance(value, dict):
        return None
    number = (int, float)
    percent, done = value.get("percent"), value.get("done")
    total = value.get("total", value.get("of"))
    if isinstance(percent, number) and not isinstance(percent, bool):
        return min(max(percent / 100, 0.0), 1.0)
    if isinstance(done, number) and isinstance(total, number) and not isinstance(total, bool) and total > 0:
        return min(max(done / total, 0.0), 1.0)
    return None


def progress_state(record: TaskRecord, *, after_seq: int = 0, with_values: bool) -> dict[str, Any]:
    """The task's progress as the detail page and its live updates show it.

    ``items`` are the items after ``after_seq`` (the newest ``MAX_PROGRESS_ITEMS``), each
    ``{"seq", "value"}``; without ``with_values`` the values are left out, and so is the
    bar's share, which is read from them.
    """
    items = TaskProgress.objects.filter(task=record)
    last = items.order_by("-seq").values("seq", "value").first()
    newest = list(
        items.filter(seq__gt=after_seq).order_by("-seq").values("seq", "value")[:MAX_PROGRESS_ITEMS]
    )
    state: dict[str, Any] = {
        "status": record.status,
        "status_label": record.get_status_display(),
        "active": record.status in ACTIVE_STATUSES,
        "count": last["seq"] if last else 0,
        "fraction": progress_fraction(last["value"]) if last and with_values else None,
        "items": [],
    }
    if with_values:
        state["items"] = [
            {"seq": row["seq"], "value": compact_json(row["value"])} for row in reversed(newest)
        ]
    else:
        state["items"] = [{"seq": row["seq"]} for row in reversed(newest)]
    return state


def render_log(record: TaskRecord) -> SafeString | str:
    lines = list(TaskLog.objects.filter(task=record).order_by("-created_at", "-id")[:MAX_LOG_LINES])
    if not lines:
        # The worker stores a run's lines when the run ends.
        return "- (stored when the run ends)" if record.status in ACTIVE_STATUSES else "-"
    rows = format_html_join(
        "",
        '<tr class="qtasks-log-{}"><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>',
        (
            (
                line.level.lower(),
                format_time(line.created_at, milliseconds=True),
                line.level,
                line.logger,
                line.message,
            )
            for line in reversed(lines)
        ),
    )
    return format_html(
        '<table class="qtasks-log"><thead><tr><th>time</th><th>level</th><th>logger</th>'
        "<th>message</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def render_worker(record: TaskRecord) -> SafeString | str:
    """The worker that runs (or ran) the task: link, whether it is alive, its heartbeat age."""
    if not record.worker_id:
        return "-"
    worker = WorkerRecord.objects.filter(pk=record.worker_id).first()
    if worker is None:
        return format_html("{} (no longer registered)", record.worker_id)
    url = reverse(f"admin:{APP_LABEL}_workerrecord_change", args=[worker.pk])
    alive = worker_is_alive(worker)
    return format_html(
        '<a href="{}">{}</a> <span class="qtasks-badge qtasks-worker-{}">{}</span> heartbeat {}',
        url,
        worker.pk,
        "alive" if alive else "gone",
        "alive" if alive else "gone",
        format_age(worker.heartbeat_at),
    )


def render_lease(record: TaskRecord) -> str:
    """When the running task's lease ends (its worker renews it with each heartbeat)."""
    if record.status != TaskStatus.PROCESS or record.lease_expires_at is None:
        return "-"
    now = timezone.now()
    if record.lease_expires_at < now:
        return f"expired {format_age(record.lease_expires_at, now)}: the task goes back to the queue"
    return f"expires {format_age(record.lease_expires_at, now)} ({format_time(record.lease_expires_at)})"
