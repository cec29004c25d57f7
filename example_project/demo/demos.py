"""The demo tasks the page offers, each with its form and how it is enqueued.

Most demos make one call and the page follows its task. The flow-control demos
(``flow=True``) make several calls to show what the database does with them: the
second call of a unique task, a tenant's syncs waiting for each other, calls spaced
by a rate limit. Their ``enqueue`` returns a ``Queued`` saying what happened.
"""

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
    RatedCallsForm,
    ReasonForm,
    TenantForm,
    TenantSyncsForm,
    TextForm,
    TwoNumbersForm,
)


@dataclass(frozen=True)
class Queued:
    """What a demo enqueued: the task whose status page the view shows, and what to tell the user."""

    task: Any
    message: str


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
    flow: bool = False
    """Offered under Flow control, with ``button`` as its button's text."""
    button: str = ""

    def form(self, data: Any = None) -> forms.Form:
        # A per-demo id prefix keeps the HTML ids unique on the page.
        return self.form_class(data, auto_id=f"id_{self.name}_%s")

    @property
    def button_text(self) -> str:
        return self.button or f"Queue {self.name}"

    def run(self, *values: Any) -> Queued:
        """Enqueue with the form's values; say which task to show and what happened."""
        queued = self.enqueue(*values)
        if isinstance(queued, Queued):
            return queued
        return Queued(queued, f"Queued {self.name} as task {queued.uuid}.")


def add_later(a: int, b: int, countdown: int) -> Any:
    """Enqueue ``add(a, b)`` to run ``countdown`` seconds from now."""
    return tasks.add.add_task(a, b, countdown=countdown)


def rebuild_twice(tenant_id: int) -> Queued:
    """Enqueue ``rebuild_report(tenant_id)`` twice: the second call returns the first's task."""
    first = tasks.rebuild_report.add_task(tenant_id)
    again = tasks.rebuild_report.add_task(tenant_id)
    if first.created:
        told = f"the first call created task {first.uuid}"
    else:
        told = f"the first call found task {first.uuid} already waiting or running (created=False)"
    same = "the same task" if again.uuid == first.uuid else f"another task, {again.uuid}"
    return Queued(
        again, f"Called rebuild_report twice: {told}; the second returned {same}, created={again.created}."
    )


def syncs_of_one_tenant(tenant_id: int, count: int, seconds: float) -> Queued:
    """Enqueue ``count`` syncs of one tenant: they run one at a time; show the last."""
    queued = [tasks.sync_tenant.add_task(tenant_id, seconds) for _ in range(count)]
    return Queued(
        queued[-1],
        f"Queued {count} sync_tenant tasks for tenant {tenant_id}: they run one at a time. "
        "This is the last of them; while it waits, the page says why.",
    )


def rated_calls(count: int) -> Queued:
    """Enqueue ``count`` calls in one statement; the rate limit spaces out their starts. Show the last."""
    queued = app.add_tasks([tasks.call_partner(n) for n in range(1, count + 1)])
    return Queued(
        queued[-1],
        f"Queued {count} call_partner tasks: two start each second. "
        "This is the last of them; the recent tasks show when each one started.",
    )


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
        Demo(
            "rebuild_report",
            "unique=True: a second call while one waits or runs returns that task",
            TenantForm,
            rebuild_twice,
            """@shared_task(unique=True, queue="reports")
def rebuild_report(tenant_id): ...

first = rebuild_report.add_task(tenant_id)
again = rebuild_report.add_task(tenant_id)
again.uuid == first.uuid  # True
again.created  # False""",
            flow=True,
            button="Queue it twice",
        ),
        Demo(
            "sync_tenant",
            "one at a time per tenant: the others wait, and the status page says why",
            TenantSyncsForm,
            syncs_of_one_tenant,
            """@shared_task(concurrency_key="tenant:{tenant_id}",
             concurrency_limit=1)
def sync_tenant(tenant_id, seconds): ...

for _ in range(count):
    sync_tenant.add_task(tenant_id, seconds)""",
            flow=True,
            button="Queue them for one tenant",
        ),
        Demo(
            "call_partner",
            "a rate limit: at most two start in any second",
            RatedCallsForm,
            rated_calls,
            """@shared_task(rate_limit="2/s")
def call_partner(n): ...

calls = [call_partner(n) for n in range(1, count + 1)]
app.add_tasks(calls)  # one statement for all""",
            flow=True,
            button="Queue them all at once",
        ),
    ]
}
