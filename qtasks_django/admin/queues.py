"""The queues page: every queue in use, what waits and runs in it, and pausing and resuming it.

A queue is listed when it has waiting or running tasks, when a live worker names it, or
when it is paused. A pause is a ``PausedQueue`` row (``queue.pauses``): from their next
claim no worker takes the queue's tasks, on any machine, until it is resumed; running
tasks finish. Pause and resume are POSTs (CSRF-protected by the admin site) behind the
``pause_queue`` permission, and each acts once however often it is repeated: pausing a
paused queue keeps its first pause, resuming a queue that runs changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from ..exceptions import QTasksError
from ..queue.overview import queue_overview
from ..queue.pauses import Pause, QueuePauses
from ..queue.presence import live_workers
from ..status import TaskStatus
from .common import APP_LABEL, format_time, has_task_permission, tasks_list_link
from .due import DELAYED, WAITING

PAUSE_PERMISSION = "pause_queue"
#: What the pause form takes as a reason (the column holds more; a form needs no more).
REASON_MAX = 1000


@dataclass
class QueueRow:
    """One queue: its tasks waiting (due), delayed and running, the live workers serving it, its pause."""

    queue: str
    waiting: int = 0
    delayed: int = 0
    running: int = 0
    workers: list[str] = field(default_factory=list)
    """The live workers that claim from it: those naming it, and those serving every queue."""
    pause: Pause | None = None

    @property
    def paused_at(self) -> str:
        return format_time(self.pause.paused_at) if self.pause else "-"

    @property
    def waiting_link(self) -> SafeString | int:
        return tasks_list_link(self.waiting, due=WAITING, queue=self.queue)

    @property
    def delayed_link(self) -> SafeString | int:
        return tasks_list_link(self.delayed, due=DELAYED, queue=self.queue)

    @property
    def running_link(self) -> SafeString | int:
        return tasks_list_link(self.running, status__exact=TaskStatus.PROCESS, queue=self.queue)


def collect_queues(now: datetime | None = None) -> tuple[list[QueueRow], list[str]]:
    """Every listed queue by name, and the live workers that serve every queue.

    The queues with tasks or a pause come from ``queue_overview`` (two queries that never
    read finished tasks); the live workers add the queues they name.
    """
    now = now or timezone.now()
    rows = {
        state.queue: QueueRow(
            state.queue, state.ready, state.waiting - state.ready, state.running, pause=state.pause
        )
        for state in queue_overview(now=now)
    }
    everywhere = []
    for worker in live_workers(now).order_by("id"):
        queues = worker.queues or ["*"]
        if "*" in queues:
            everywhere.append(worker.pk)
        for queue in queues:
            if queue != "*":
                rows.setdefault(queue, QueueRow(queue)).workers.append(worker.pk)
    for row in rows.values():
        row.workers.extend(everywhere)
    return sorted(rows.values(), key=lambda row: row.queue), everywhere


def paused_queue_names() -> list[str]:
    return [pause.queue for pause in QueuePauses().paused()]


class QueueViews:
    """The queues page of a ``TaskRecordAdmin``, its pause and resume, and their URLs."""

    def __init__(self, model_admin: Any) -> None:
        self.model_admin = model_admin

    def urls(self) -> list[URLPattern]:
        wrap = self.model_admin.admin_site.admin_view  # staff login, CSRF protection
        return [
            path("queues/", wrap(self.page), name=f"{APP_LABEL}_taskrecord_queues"),
            path(
                "queues/pause/", wrap(require_POST(self.pause)), name=f"{APP_LABEL}_taskrecord_queues_pause"
            ),
            path(
                "queues/resume/",
                wrap(require_POST(self.resume)),
                name=f"{APP_LABEL}_taskrecord_queues_resume",
            ),
        ]

    def can_pause(self, request: HttpRequest) -> bool:
        return self.model_admin.has_view_permission(request) and has_task_permission(
            request, PAUSE_PERMISSION
        )

    def page(self, request: HttpRequest) -> HttpResponse:
        """The queues (needs the permission to view tasks; the buttons, the one to pause queues)."""
        if not self.model_admin.has_view_permission(request):
            raise PermissionDenied
        queues, everywhere = collect_queues()
        context = {
            **self.model_admin.admin_site.each_context(request),
            "title": "Queues",
            "opts": self.model_admin.model._meta,
            "queues": queues,
            "everywhere": everywhere,
            "can_pause": self.can_pause(request),
            "reason_max": REASON_MAX,
            "as_of": format_time(timezone.now()),
        }
        return TemplateResponse(request, "admin/qtasks_django/queues.html", context)

    def pause(self, request: HttpRequest) -> HttpResponse:
        queue = self._queue(request)
        reason = request.POST.get("reason", "").strip()[:REASON_MAX]
        try:
            paused = QueuePauses().pause(queue, reason=reason, by=request.user.get_username())
        except QTasksError as exc:  # a name no queue has, a NUL in the reason
            messages.error(request, f"Nothing paused: {exc}")
            return self._back()
        if paused:
            messages.success(
                request, f"Paused queue {queue!r}: no worker starts its tasks until it is resumed."
            )
        else:
            messages.info(request, f"Queue {queue!r} was already paused.")
        return self._back()

    def resume(self, request: HttpRequest) -> HttpResponse:
        queue = self._queue(request)
        try:
            resumed = QueuePauses().resume(queue)
        except QTasksError as exc:
            messages.error(request, f"Nothing resumed: {exc}")
            return self._back()
        if resumed:
            messages.success(request, f"Resumed queue {queue!r}.")
        else:
            messages.info(request, f"Queue {queue!r} was not paused.")
        return self._back()

    def _queue(self, request: HttpRequest) -> str:
        if not self.can_pause(request):
            raise PermissionDenied
        return request.POST.get("queue", "")  # exact: a queue's name may end in a space

    def _back(self) -> HttpResponse:
        return HttpResponseRedirect(reverse(f"admin:{APP_LABEL}_taskrecord_queues"))
