"""One task of every kind qtasks_django supports, each small and observable.

qtasks_django imports this module when Django starts (autodiscovery of
``tasks.py``), so a running ``python manage.py qtasks_worker`` knows every task
below. Run them from the demo page (``/``) or all at once with
``python manage.py demo_smoke``.

``add``
    A bare ``@shared_task``: the name is the function's, the priority the default.
    ``add(2, 3)`` ends ``success`` with the result ``5``.
``flaky``
    ``@shared_task`` with every common option: ``priority``, ``echo`` (the task
    object arrives as ``self``), ``retry=2`` on ``ZeroDivisionError`` only,
    ``tags`` and a ``description`` (both shown in the admin's registered tasks).
    It reads its own record through ``self.ctx.get_metadata()`` and fails while
    ``attempt < 3``: attempts 1 and 2 end ``retry`` with their tracebacks, linked
    to their successors, and attempt 3 ends ``success``.
``parent``
    ``@app.task(echo=True)`` on the default app: ``self.add_task("add", n, n)``
    enqueues a nested task, which records ``parent`` as its parent. The result is
    the child's uuid.
``doubler``
    A generator with a ``generate_handler``: every yielded number goes through
    ``double``, the doubled value is saved at once as a numbered progress item
    (see ``/tasks/<uuid>/`` while it runs) and is sent back into the generator.
    It returns ``None``, so the result is the list of handler outputs:
    ``doubler(3)`` gives ``[6, 4, 2]``.
``slow_hello``
    An ``async def`` on an ``AsyncRouter`` with ``max_time=5``: it awaits for a
    second and returns ``"hello <name>"``. The router is attached with
    ``app.include_router(router)``. Being an ``AsyncTask``, its ``add_task`` is
    awaitable; sync code enqueues it by name with ``app.add_task("slow_hello", ...)``.
``shout``
    An after-middleware (``Upper``) replaces the result: ``shout("hi")`` gives
    ``"HI"``.
``fails``
    Raises ``ValueError`` every time and has no ``retry``: it ends ``error`` with
    its traceback, so the admin offers **Retry** on it (the retry fails too, as a
    second attempt linked to the first).
``log_steps``
    Logs through ``self.ctx.get_logger()``; the lines are kept with the task and
    shown in the admin.
``long_job``
    A long, cancellable task: an ``echo=True`` generator that waits with
    ``self.ctx.sleep`` between steps and yields ``{"done": i, "total": steps}``
    after each one (the status page draws it as a progress bar). Cancelled while
    it runs (``app.cancel(uuid, reason)``, the status page's Cancel button), it
    stops at its next ``self.ctx.sleep`` and ends ``cancel`` with the reason.
``tick``
    ``@shared_task(schedule=timedelta(seconds=20))``: the worker fires it every 20
    seconds, with no beat process (see Schedules in the admin).
``summary``
    Counts the tasks of the last ``hours`` by status. ``settings.QTASKS["SCHEDULES"]``
    runs it every morning at 08:00 with ``hours=24``; **Run now** in the admin's
    Schedules runs it at once.

Flow control (docs/flow-control.md):

``rebuild_report``
    ``unique=True``: while a rebuild of a tenant waits or runs, enqueueing another
    one for that tenant returns it (``created`` is False) instead of a second task.
    It runs in its own queue, ``reports``, which the demo page pauses and resumes.
``sync_tenant``
    ``concurrency_key="tenant:{tenant_id}", concurrency_limit=1``: syncs of one
    tenant run one at a time, across all workers; other tenants' run beside them.
``call_partner``
    ``rate_limit="2/s"``: at most two start in any second, however many wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from qtasks_django import AsyncRouter, TaskMiddleware, app, shared_task
from qtasks_django.models import TaskRecord

FLAKY_FAILURES = 2
"""``flaky`` fails on its first two attempts and succeeds on the third."""
REPORTS_QUEUE = "reports"
"""The queue of ``rebuild_report``: the demo page pauses and resumes it."""
REBUILD_SECONDS = 3.0


@shared_task
def add(a: int, b: int) -> int:
    """Return ``a + b``."""
    return a + b


@shared_task(
    priority=1,
    echo=True,
    retry=FLAKY_FAILURES,
    retry_on_exc=[ZeroDivisionError],
    tags=["demo"],
    description="Fails twice, then succeeds",
)
def flaky(self: Any) -> str:
    """Fail with ``ZeroDivisionError`` until the third attempt.

    The attempt number comes from the task's own record, so no database table or
    cache of ours is needed to remember earlier failures.
    """
    attempt = self.ctx.get_metadata().attempt
    if attempt <= FLAKY_FAILURES:
        raise ZeroDivisionError(f"attempt {attempt} fails on purpose")
    return f"succeeded on attempt {attempt}"


@app.task(echo=True)
def parent(self: Any, n: int) -> str:
    """Enqueue ``add(n, n)`` as a nested task and return its uuid."""
    child = self.add_task("add", n, n)
    return str(child.uuid)


def double(value: int) -> int:
    """Handle one value yielded by ``doubler``."""
    return value * 2


@shared_task(generate_handler=double)
def doubler(n: int) -> Generator[int, int, None]:
    """Yield ``n, n-1, ..., 1``; the result is the handler's outputs."""
    for i in range(n, 0, -1):
        doubled = yield i
        if doubled != i * 2:
            # The handler's output is sent back into the generator.
            raise RuntimeError(f"expected {i * 2} back from the handler, got {doubled!r}")
        time.sleep(0.3)  # slow enough to watch the progress items arrive
    return None


router = AsyncRouter()


@router.task(max_time=5)
async def slow_hello(name: str) -> str:
    """Greet ``name`` after a second of (non-blocking) waiting."""
    await asyncio.sleep(1)
    return f"hello {name}"


app.include_router(router)


class Upper(TaskMiddleware):
    """After-middleware: replace the task's result with its upper-case text."""

    def __call__(self) -> None:
        self.task_executor.result = str(self.task_executor.result).upper()


@shared_task(middlewares_after=[Upper])
def shout(text: str) -> str:
    """Return ``text``; the ``Upper`` middleware makes it upper case."""
    return text


@shared_task(description="Always fails: try Retry in the admin")
def fails(reason: str) -> None:
    """Raise ``ValueError(reason)``: the task ends ``error`` (it has no retries)."""
    raise ValueError(reason)


@shared_task(echo=True)
def log_steps(self: Any, n: int) -> int:
    """Log ``n`` numbered lines through the task's logger and return ``n``."""
    logger = self.ctx.get_logger("demo.log_steps")
    for step in range(1, n + 1):
        logger.info("step %d of %d", step, n)
    return n


@shared_task(echo=True, description="Works step by step; cancellable at every step")
def long_job(self: Any, steps: int = 20, seconds_per_step: float = 1.0) -> Generator[dict, Any, str]:
    """Work for ``steps`` steps of ``seconds_per_step`` each, reporting progress after each.

    ``self.ctx.sleep`` is where a cancel lands: it returns early by raising
    ``TaskCancelError`` as soon as the task is cancelled or its worker must stop,
    so the task never runs on for a whole step after a cancel.
    """
    self.ctx.get_logger("demo.long_job").info("%d steps of %.2f s to go", steps, seconds_per_step)
    for done in range(1, steps + 1):
        self.ctx.sleep(seconds_per_step)
        yield {"done": done, "total": steps}
    return f"finished {steps} steps"


@shared_task(schedule=timedelta(seconds=20), description="Fired every 20 seconds by the workers themselves")
def tick() -> str:
    return f"tick at {timezone.localtime():%H:%M:%S}"


@shared_task(
    description="Counts the tasks of the last `hours` by status; scheduled every morning in settings"
)
def summary(hours: int = 24) -> dict[str, int]:
    since = timezone.now() - timedelta(hours=hours)
    counts = TaskRecord.objects.filter(created_at__gte=since).values("status").annotate(n=Count("uuid"))
    return {row["status"]: row["n"] for row in counts}


def clock() -> str:
    """The time of day to a tenth of a second, to see when a task ran."""
    return f"{timezone.localtime():%H:%M:%S.%f}"[:-5]


@shared_task(
    echo=True,
    unique=True,
    queue=REPORTS_QUEUE,  # not a parameter: it picks the task's queue
    description="Unique per tenant: a second call returns the waiting or running rebuild",
)
def rebuild_report(self: Any, tenant_id: int) -> str:
    """Take a few seconds: long enough to call it again while it waits or runs."""
    self.ctx.sleep(REBUILD_SECONDS)
    return f"report of tenant {tenant_id} rebuilt"


@shared_task(
    echo=True,
    concurrency_key="tenant:{tenant_id}",
    concurrency_limit=1,
    description="One at a time per tenant, across all workers",
)
def sync_tenant(self: Any, tenant_id: int, seconds: float = 2.0) -> str:
    """Work ``seconds``; the result says from when to when, to show that a tenant's syncs never overlap."""
    started = clock()
    self.ctx.sleep(seconds)
    return f"tenant {tenant_id} synced from {started} to {clock()}"


@shared_task(rate_limit="2/s", description="At most two start in any second, across all workers")
def call_partner(n: int) -> str:
    """Stand for a call to an outside API that allows two calls a second."""
    return f"call {n} started at {clock()}"
