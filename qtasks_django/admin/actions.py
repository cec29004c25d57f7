"""The actions that operate on one task: retry, cancel, run now, duplicate.

Each is a POST (CSRF-protected by the admin site) behind its own permission; cancel, which
stops work, first shows a confirmation page. The work is done by ``qtasks_django.operations``,
which acts once however often a request is repeated.
"""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from ..models import TaskRecord
from ..queue import operations
from ..status import TaskStatus
from .common import APP_LABEL, has_task_permission, task_change_url


@dataclass(frozen=True, kw_only=True)
class TaskAction:
    """One action: its URL name, the permission it needs, and when it applies."""

    name: str
    label: str
    permission: str
    applies: Callable[[TaskRecord], bool]
    confirm: bool = False
    """Whether the button leads to a confirmation page (GET) rather than acting (POST)."""
    help: str = ""

    @property
    def url_name(self) -> str:
        return f"{APP_LABEL}_taskrecord_{self.name}"

    def url(self, record: TaskRecord) -> str:
        return reverse(f"admin:{self.url_name}", args=[str(record.pk)])


def _is_delayed(record: TaskRecord) -> bool:
    return record.status == TaskStatus.NEW and record.eta is not None and record.eta > timezone.now()


ACTIONS = (
    TaskAction(
        name="retry",
        label="Retry",
        permission="retry_task",
        applies=lambda r: r.status in operations.RETRYABLE_STATUSES and r.retry_child_uuid is None,
        help="Run it again as a new attempt linked to this one.",
    ),
    TaskAction(
        name="cancel",
        label="Cancel…",
        permission="cancel_task",
        applies=lambda r: r.status in (TaskStatus.NEW, TaskStatus.PROCESS),
        confirm=True,
        help="Stop it: a waiting task never starts; a running one is stopped by its worker.",
    ),
    TaskAction(
        name="run_now",
        label="Run now",
        permission="run_task_now",
        applies=_is_delayed,
        help="Make it due now instead of at its eta.",
    ),
    TaskAction(
        name="duplicate",
        label="Duplicate",
        permission="duplicate_task",
        applies=lambda r: True,
        help="Enqueue a new task with the same name, queue, priority and arguments.",
    ),
)


def available_actions(request: HttpRequest, record: TaskRecord) -> list[dict[str, Any]]:
    """The actions this user may run on ``record`` now, as the detail page renders them."""
    return [
        {
            "action": action,
            "url": action.url(record),
            # The duplicate's uuid, fixed when the page is drawn: submitting the form
            # twice then makes one copy.
            "nonce": uuid_lib.uuid4() if action.name == "duplicate" else None,
        }
        for action in ACTIONS
        if action.applies(record) and has_task_permission(request, action.permission)
    ]


class TaskActionViews:
    """The action views of a ``TaskRecordAdmin``, and their URLs."""

    def __init__(self, model_admin: Any) -> None:
        self.model_admin = model_admin

    def urls(self) -> list[URLPattern]:
        wrap = self.model_admin.admin_site.admin_view  # staff login, CSRF protection
        views = {
            "retry": require_POST(self.retry),
            "cancel": require_http_methods(["GET", "POST"])(self.cancel),
            "run_now": require_POST(self.run_now),
            "duplicate": require_POST(self.duplicate),
        }
        return [
            path(
                f"<path:object_id>/{action.name.replace('_', '-')}/",
                wrap(views[action.name]),
                name=action.url_name,
            )
            for action in ACTIONS
        ]

    def retry(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._allow(request, "retry")
        result = operations.retry_task(self._record(object_id).pk)
        return self._report(request, result, object_id, go_to_new_task=True)

    def run_now(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._allow(request, "run_now")
        return self._report(request, operations.run_task_now(self._record(object_id).pk), object_id)

    def duplicate(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._allow(request, "duplicate")
        record = self._record(object_id)
        result = operations.duplicate_task(record.pk, new_uuid=request.POST.get("nonce") or None)
        return self._report(request, result, object_id, go_to_new_task=True)

    def cancel(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: the confirmation page; POST: cancel with the reason given there."""
        self._allow(request, "cancel")
        record = self._record(object_id)
        if request.method == "GET":
            return self._confirm_cancel(request, record)
        reason = request.POST.get("reason", "").strip()[:1000] or "cancelled in the admin"
        if "\x00" in reason:  # the database refuses it in any text
            error = "The reason cannot hold a NUL character."
            return self._confirm_cancel(request, record, error=error, status=400)
        return self._report(request, operations.cancel_task(record.pk, reason), object_id)

    def _confirm_cancel(
        self, request: HttpRequest, record: TaskRecord, *, error: str = "", status: int = 200
    ) -> HttpResponse:
        opts = self.model_admin.model._meta
        context = {
            **self.model_admin.admin_site.each_context(request),
            "title": "Are you sure?",
            "opts": opts,
            "record": record,
            "running": record.status == TaskStatus.PROCESS,
            "active": record.status in (TaskStatus.NEW, TaskStatus.PROCESS),
            "task_url": task_change_url(record.pk),
            "error": error,
        }
        template = "admin/qtasks_django/taskrecord/confirm_cancel.html"
        return TemplateResponse(request, template, context, status=status)

    def _allow(self, request: HttpRequest, name: str) -> None:
        action = next(a for a in ACTIONS if a.name == name)
        if not (
            self.model_admin.has_view_permission(request) and has_task_permission(request, action.permission)
        ):
            raise PermissionDenied

    def _record(self, object_id: str) -> TaskRecord:
        record = self.model_admin.get_object_for_action(object_id)
        if record is None:
            raise Http404("no such task")
        return record

    def _report(
        self,
        request: HttpRequest,
        result: operations.OperationResult,
        object_id: str,
        go_to_new_task: bool = False,
    ) -> HttpResponse:
        level = messages.SUCCESS if result.acted else messages.WARNING
        messages.add_message(request, level, result.message)
        target = result.task_uuid if go_to_new_task and result.task_uuid else object_id
        return HttpResponseRedirect(task_change_url(target))
