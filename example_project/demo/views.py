"""The demo page: recent tasks, a form per demo task, and a JSON view for polling.

This is a demo: the pages need no login and show every task's arguments and
result. Real projects show tasks in the admin, which is permission-gated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from qtasks_django import app
from qtasks_django.exceptions import QTasksError
from qtasks_django.models import TaskRecord

from . import tasks

RECENT_TASKS = 30


class NoInputForm(forms.Form):
    """For tasks that take no argument."""


class TwoNumbersForm(forms.Form):
    a = forms.IntegerField(initial=2, min_value=-1_000_000, max_value=1_000_000)
    b = forms.IntegerField(initial=3, min_value=-1_000_000, max_value=1_000_000)


class CountForm(forms.Form):
    n = forms.IntegerField(initial=3, min_value=0, max_value=50)


class NameForm(forms.Form):
    name = forms.CharField(initial="world", max_length=100)


class TextForm(forms.Form):
    text = forms.CharField(initial="hello qtasks", max_length=200)


@dataclass(frozen=True)
class Demo:
    """A demo task as the page offers it."""

    name: str
    summary: str
    form_class: type[forms.Form]
    enqueue: Callable[..., Any]
    """Called inside ``transaction.atomic()`` with the form's values, in field order."""

    def form(self, data: Any = None) -> forms.Form:
        # A per-demo id prefix keeps the HTML ids unique on the page.
        return self.form_class(data, auto_id=f"id_{self.name}_%s")


DEMOS = {
    demo.name: demo
    for demo in [
        Demo("add", "a + b (bare @shared_task)", TwoNumbersForm, tasks.add.add_task),
        Demo("flaky", "fails twice, then succeeds (retry=2)", NoInputForm, tasks.flaky.add_task),
        Demo("parent", "enqueues add(n, n) as a nested task", CountForm, tasks.parent.add_task),
        Demo("countdown", "generator: progress items n*2 ... 2", CountForm, tasks.countdown.add_task),
        # An AsyncTask's add_task is awaitable; from sync code, enqueue by name.
        Demo("slow_hello", "async, max_time=5", NameForm, partial(app.add_task, "slow_hello")),
        Demo("shout", "an after-middleware upper-cases the result", TextForm, tasks.shout.add_task),
        Demo("log_steps", "logs n lines kept with the task", CountForm, tasks.log_steps.add_task),
    ]
}


def outcome(record: TaskRecord) -> str:
    """Summarise a task's result, error or cancel reason in one line."""
    if record.cancel_reason:
        return f"cancelled: {record.cancel_reason}"
    if record.traceback:
        lines = record.traceback.strip().splitlines()
        return lines[-1] if lines else ""
    return "" if record.returning is None else repr(record.returning)


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """List the most recent tasks and offer a form per demo task."""
    records = TaskRecord.objects.order_by("-created_at")[:RECENT_TASKS]
    return render(
        request,
        "demo/index.html",
        {
            "demos": [(demo, demo.form()) for demo in DEMOS.values()],
            "rows": [(record, outcome(record)) for record in records],
        },
    )


@require_POST
def enqueue(request: HttpRequest, name: str) -> HttpResponse:
    """Validate the form of demo task ``name``, enqueue the task and go back."""
    demo = DEMOS.get(name)
    if demo is None:
        raise Http404(f"No demo task named {name!r}.")
    form = demo.form(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{name}: {field}: {' '.join(errors)}")
        return redirect("demo:index")
    values = [form.cleaned_data[field] for field in form.fields]
    try:
        # The row is written in this transaction: had it rolled back, the task
        # would never exist. Workers are woken only after the commit.
        with transaction.atomic():
            task = demo.enqueue(*values)
    except QTasksError as exc:
        messages.error(request, f"{name}: {exc}")
    else:
        messages.success(request, f"queued {task.uuid}")
    return redirect("demo:index")


@require_GET
def task_detail(request: HttpRequest, task_uuid: UUID) -> JsonResponse:
    """Return a task's status, result and progress items as JSON."""
    record = TaskRecord.objects.filter(uuid=task_uuid).first()
    if record is None:
        return JsonResponse({"error": f"no task {task_uuid}"}, status=404)
    return JsonResponse(
        {
            "uuid": str(record.uuid),
            "task_name": record.task_name,
            "status": record.status,
            "priority": record.priority,
            "attempt": record.attempt,
            "args": record.args,
            "kwargs": record.kwargs,
            "result": record.returning,
            "traceback": record.traceback,
            "cancel_reason": record.cancel_reason,
            "parent_uuid": _str_or_none(record.parent_uuid),
            "retry_parent_uuid": _str_or_none(record.retry_parent_uuid),
            "retry_child_uuid": _str_or_none(record.retry_child_uuid),
            "created_at": record.created_at.isoformat(),
            "finished_at": record.finished_at.isoformat() if record.finished_at else None,
            "progress": [
                {"seq": item.seq, "value": item.value} for item in record.progress_items.order_by("seq")
            ],
        }
    )


def _str_or_none(value: UUID | None) -> str | None:
    return None if value is None else str(value)
