"""The demo tasks the page offers, each with its form and how it is enqueued."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django import forms

from qtasks_django import app

from . import tasks
from .forms import (
    CountForm,
    DelayedAddForm,
    LongJobForm,
    NameForm,
    NoInputForm,
    ReasonForm,
    TextForm,
    TwoNumbersForm,
)


@dataclass(frozen=True)
class Demo:
    """A demo task as the page offers it."""

    name: str
    summary: str
    form_class: type[forms.Form]
    enqueue: Callable[..., Any]
    """Called inside ``transaction.atomic()`` with the form's values, in field order."""
    code: str
    """The call, as the page shows it."""

    def form(self, data: Any = None) -> forms.Form:
        # A per-demo id prefix keeps the HTML ids unique on the page.
        return self.form_class(data, auto_id=f"id_{self.name}_%s")


def add_later(a: int, b: int, countdown: int) -> Any:
    """Enqueue ``add(a, b)`` to run ``countdown`` seconds from now."""
    return tasks.add.add_task(a, b, countdown=countdown)


DEMOS = {
    demo.name: demo
    for demo in [
        Demo("add", "a + b: a bare @shared_task", TwoNumbersForm, tasks.add.add_task, "add.add_task(a, b)"),
        Demo(
            "flaky",
            "fails twice, then succeeds: retry=2",
            NoInputForm,
            tasks.flaky.add_task,
            "flaky.add_task()",
        ),
        Demo(
            "fails",
            "raises an error: ends error, and the admin offers Retry",
            ReasonForm,
            tasks.fails.add_task,
            "fails.add_task(reason)",
        ),
        Demo(
            "add_later",
            "add(a, b) with a countdown: delayed, and the admin offers Run now",
            DelayedAddForm,
            add_later,
            "add.add_task(a, b, countdown=countdown)",
        ),
        Demo(
            "parent",
            "enqueues add(n, n) as a nested task",
            CountForm,
            tasks.parent.add_task,
            "parent.add_task(n)",
        ),
        Demo(
            "doubler",
            "a generator whose progress the status page shows live",
            CountForm,
            tasks.doubler.add_task,
            "doubler.add_task(n)",
        ),
        Demo(
            "long_job",
            "long and cancellable: a progress bar and a Cancel button",
            LongJobForm,
            tasks.long_job.add_task,
            "long_job.add_task(steps, seconds_per_step)",
        ),
        # An AsyncTask's add_task is awaitable; from sync code, enqueue by name.
        Demo(
            "slow_hello",
            "an async def task with max_time=5",
            NameForm,
            partial(app.add_task, "slow_hello"),
            'app.add_task("slow_hello", name)',
        ),
        Demo(
            "shout",
            "an after-middleware upper-cases the result",
            TextForm,
            tasks.shout.add_task,
            "shout.add_task(text)",
        ),
        Demo(
            "log_steps",
            "logs n lines, kept with the task",
            CountForm,
            tasks.log_steps.add_task,
            "log_steps.add_task(n)",
        ),
    ]
}
