"""The demo pages: every way a view calls a task, and a live status page.

This is a demo: the pages need no login and show every task's arguments and
result. Real projects show tasks in the admin, which is permission-gated.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from qtasks_django import app
from qtasks_django.exceptions import QTasksError
from qtasks_django.models import TaskRecord

from . import tasks
from .demos import DEMOS
from .forms import CancelForm, PauseForm, TransactionForm, WaitForm
from .status import last_line, task_status

RECENT_TASKS = 30


class RollBack(Exception):
    """Raised inside ``atomic()`` to roll the transaction back on purpose."""


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Offer a form per way of calling a task, and list the most recent tasks."""
    records = TaskRecord.objects.order_by("-created_at")[:RECENT_TASKS]
    context = {
        "demos": [(demo, demo.form()) for demo in DEMOS.values() if not demo.flow],
        "flow_demos": [(demo, demo.form()) for demo in DEMOS.values() if demo.flow],
        "queue": tasks.REPORTS_QUEUE,
        "pause": next((p for p in app.paused_queues() if p.queue == tasks.REPORTS_QUEUE), None),
        "pause_form": PauseForm(auto_id="id_pause_%s"),
        "transaction_form": TransactionForm(auto_id="id_tx_%s"),
        "wait_form": WaitForm(auto_id="id_wait_%s"),
        "rows": [(record, _one_line_outcome(record)) for record in records],
    }
    return render(request, "demo/index.html", context)


def _one_line_outcome(record: TaskRecord) -> str:
    if record.cancel_reason:
        return f"cancelled: {record.cancel_reason}"
    if record.traceback:
        return last_line(record.traceback)
    return "" if record.returning is None else repr(record.returning)


@require_POST
def enqueue(request: HttpRequest, name: str) -> HttpResponse:
    """Validate demo ``name``'s form, enqueue the task and show its status page."""
    demo = DEMOS.get(name)
    if demo is None:
        raise Http404(f"No demo task named {name!r}.")
    form = demo.form(request.POST)
    if not form.is_valid():
        _report_form_errors(request, name, form.errors)
        return redirect("demo:index")
    values = [form.cleaned_data[field] for field in form.fields]
    try:
        # The row is written in this transaction: had it rolled back, the task
        # would never exist. Workers are woken only after the commit.
        with transaction.atomic():
            queued = demo.run(*values)
    except QTasksError as exc:
        messages.error(request, f"{name}: {exc}")
        return redirect("demo:index")
    messages.success(request, queued.message)
    return redirect("demo:task-status", task_uuid=queued.task.uuid)


@require_POST
def enqueue_in_transaction(request: HttpRequest) -> HttpResponse:
    """Enqueue ``add(a, b)`` inside ``atomic()`` and roll it back if asked: then the task never was."""
    form = TransactionForm(request.POST)
    if not form.is_valid():
        _report_form_errors(request, "transaction", form.errors)
        return redirect("demo:index")
    data = form.cleaned_data
    try:
        with transaction.atomic():
            task = tasks.add.add_task(data["a"], data["b"])
            # Real code writes its own rows here; an error in any of them rolls the task back too.
            if data["roll_back"]:
                raise RollBack
    except RollBack:
        messages.warning(
            request, f"The transaction rolled back, taking task {task.uuid} with it: no worker will run it."
        )
    else:
        messages.success(request, f"The transaction committed task {task.uuid}; a worker runs it now.")
    return redirect("demo:task-status", task_uuid=task.uuid)


@require_POST
def wait_for_result(request: HttpRequest) -> HttpResponse:
    """Enqueue ``slow_hello(name)`` with ``timeout``: block until its result, or give up."""
    form = WaitForm(request.POST, auto_id="id_wait_%s")
    if not form.is_valid():
        _report_form_errors(request, "wait", form.errors)
        return redirect("demo:index")
    name, timeout = form.cleaned_data["name"], form.cleaned_data["timeout"]
    started = time.monotonic()
    # Outside any atomic() block on purpose: no worker can see a task before its
    # transaction commits, so add_task refuses to wait inside one (QTasksError).
    final = app.add_task("slow_hello", name, timeout=timeout)
    context = {"final": final, "timeout": timeout, "waited": time.monotonic() - started}
    return render(request, "demo/waited.html", context)


@require_POST
def pause_or_resume(request: HttpRequest) -> HttpResponse:
    """Pause the reports queue (its tasks wait, every worker leaves them) or resume it."""
    queue = tasks.REPORTS_QUEUE
    if request.POST.get("action") == "resume":
        if app.resume_queue(queue):
            messages.success(request, f"Resumed queue {queue!r}: the workers start its waiting tasks now.")
        else:
            messages.info(request, f"Queue {queue!r} was not paused.")
    else:
        form = PauseForm(request.POST)
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        if app.pause_queue(queue, reason=reason, by="the demo page"):
            messages.success(request, f"Paused queue {queue!r}: running tasks finish, waiting ones wait.")
        else:
            messages.info(request, f"Queue {queue!r} was already paused.")
    return redirect(reverse("demo:index") + "#demo-pause")


@require_GET
def task_status_page(request: HttpRequest, task_uuid: UUID) -> HttpResponse:
    """Show a task's status, progress, attempts and nested tasks; the page updates itself."""
    status = task_status(task_uuid)
    if status is None:
        return render(request, "demo/no_task.html", {"task_uuid": task_uuid}, status=404)
    context = {"task": status, "cancel_form": CancelForm()}
    return render(request, "demo/status.html", context)


@require_GET
def task_status_json(request: HttpRequest, task_uuid: UUID) -> JsonResponse:
    """The status page's data as JSON, for its polling script (and for curl)."""
    status = task_status(task_uuid)
    if status is None:
        return JsonResponse({"error": f"no task {task_uuid}"}, status=404)
    return JsonResponse(status)


@require_POST
def cancel(request: HttpRequest, task_uuid: UUID) -> HttpResponse:
    """Cancel a task: a queued one never starts; a running one stops at its next step."""
    form = CancelForm(request.POST)
    reason = (form.cleaned_data["reason"] if form.is_valid() else "") or "cancelled from the demo page"
    was = app.cancel(task_uuid, reason=reason)
    if was == "cancel":
        messages.success(request, "Cancelled before it started: it will never run.")
    elif was == "process":
        messages.success(request, "Cancel requested: the task stops at its next step.")
    else:
        messages.info(request, "Nothing to cancel: the task has already ended.")
    return redirect("demo:task-status", task_uuid=task_uuid)


def _report_form_errors(request: HttpRequest, what: str, errors: dict[str, Any]) -> None:
    for field, field_errors in errors.items():
        messages.error(request, f"{what}: {field}: {' '.join(field_errors)}")
