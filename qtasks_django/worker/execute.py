"""Run one claimed task under its limits, then hand its outcome to the writer.

``execute`` is the worker's per-task coroutine: it sets the current task, enforces
``max_time`` (and a forced cancel, which moves the deadline to now), runs the task in a
task process (sync tasks) or on the event loop (async ones), and queues the outcome.
"""

from __future__ import annotations

import asyncio
import time
import traceback as traceback_lib
from typing import TYPE_CHECKING

from django.utils import timezone

from ..exceptions import TaskTimeoutError
from ..queue.outages import retrying_db_errors
from ..status import TaskStatus
from ..tasks.context import current_task_uuid
from ..tasks.execution import Outcome, run_to_outcome
from .outcomes import log_outcome, record_outcome, report_write_failure

if TYPE_CHECKING:
    from ..tasks.run import TaskRun
    from .processes import TaskProcesses
    from .writer import OutcomeWriter


async def execute(
    run: TaskRun, processes: TaskProcesses | None = None, writer: OutcomeWriter | None = None
) -> Outcome:
    """Run the task under its limits and record the outcome; never raises for task errors.

    Sync tasks run in a child of ``processes`` when given, so that a limit can kill them;
    ``writer`` batches the writes of outcomes.
    """
    started = time.monotonic()
    started_at = timezone.now()
    token = current_task_uuid.set(run.uuid)
    try:
        outcome = await _limited(run, processes)
    finally:
        current_task_uuid.reset(token)
    if run.released:
        return outcome  # shutdown gave it back to the queue: it runs again elsewhere
    outcome.started_at, outcome.finished_at = started_at, timezone.now()
    if writer is not None:
        # The slot is free as soon as the outcome is queued: the commit of the batch
        # overlaps the next tasks. A worker that dies before it leaves the task in
        # ``process`` under its lease, to be rescued: at-least-once, never lost.
        written = writer.submit(run, outcome)
        written.add_done_callback(report_write_failure)
        if run.record.concurrency_key is not None:
            # Behind a concurrency gate the slot frees only once the row has ended: the
            # look at the gate that the free slot triggers must count it out, or the
            # next task of its key waits for the next look.
            await asyncio.wait([asyncio.wrap_future(written)])
    else:
        await run.run_sync(retrying_db_errors, record_outcome, run, outcome)
    log_outcome(run, outcome, time.monotonic() - started)
    return outcome


async def _limited(run: TaskRun, processes: TaskProcesses | None) -> Outcome:
    """Run under ``max_time`` (and a forced cancel, which moves the deadline to now)."""
    max_time = run.schema.max_time
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(None if max_time is None else loop.time() + max_time) as scope:
            run.limit = scope
            if processes is not None and not run.schema.runs_async:
                return await processes.execute(run)
            return await run_to_outcome(run)
    except TimeoutError:
        if run.forced_reason:
            return Outcome(status=TaskStatus.CANCEL, cancel_reason=run.forced_reason)
        run.stop(f"max_time of {max_time}s exceeded")  # an abandoned thread's ctx.sleep ends at once
        error = TaskTimeoutError(f"Time limit exceeded for task {run.schema.name}: {max_time} seconds")
        return Outcome(status=TaskStatus.ERROR, traceback="".join(traceback_lib.format_exception(error)))
    except asyncio.CancelledError:
        run.stop("worker shut down")
        raise  # a forced shutdown: the task goes back to the queue, nothing is written
    finally:
        run.limit = None
