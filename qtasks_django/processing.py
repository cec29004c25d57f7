"""Run one claimed task to its outcome and record it (the worker's per-task coroutine)."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback as traceback_lib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.module_loading import import_string

from . import signals
from .conf import settings
from .context import current_task_uuid
from .exceptions import TaskCancelError, TaskTimeoutError
from .executors import BaseTaskExecutor
from .retry import RetryDecision
from .runs import TaskRun
from .status import TaskStatus

if TYPE_CHECKING:
    from .children import TaskProcesses
    from .finishing import OutcomeWriter

logger = logging.getLogger("qtasks_django.worker")


@dataclass(kw_only=True)
class Outcome:
    """How a run ended, before it is written."""

    status: str
    returning: Any = None
    traceback: str = ""
    cancel_reason: str = ""
    retry: RetryDecision | None = None
    started_at: Any = None
    """When the run began (a task claimed ahead waits a little after its claim)."""
    finished_at: Any = None
    """When the run ended (it is written a little later, in a batch)."""

    def times(self) -> dict[str, Any]:
        """The run's start and end, as fields to write (only those known)."""
        return {k: v for k, v in (("started_at", self.started_at), ("finished_at", self.finished_at)) if v}


async def process(
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
        writer.submit(run, outcome).add_done_callback(_report_write_failure)
    else:
        await run.run_sync(_retrying_db_errors, record_outcome, run, outcome)
    _log(run, outcome, time.monotonic() - started)
    return outcome


async def run_to_outcome(run: TaskRun) -> Outcome:
    """Execute the task and classify how it ended (in the worker or in a task process)."""
    executor_cls = run.schema.executor or import_string(settings.DEFAULT_EXECUTOR)
    executor: BaseTaskExecutor = executor_cls(task_func=run.schema, run=run)
    try:
        returning = await executor.execute()
    except TaskCancelError as exc:
        return Outcome(status=TaskStatus.CANCEL, cancel_reason=exc.reason or str(exc))
    except asyncio.CancelledError:
        raise  # a limit or a forced shutdown: decided by the caller
    except BaseException as exc:  # SystemExit and KeyboardInterrupt end only this task
        return _failure(run, executor, exc)
    return Outcome(status=TaskStatus.SUCCESS, returning=returning)


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


def _failure(run: TaskRun, executor: BaseTaskExecutor, exc: BaseException) -> Outcome:
    text = "".join(traceback_lib.format_exception(exc))
    decision = executor.retry_decision(exc, attempts_left=run.record.retry, attempt=run.record.attempt)
    if decision is not None:
        return Outcome(status=TaskStatus.RETRY, traceback=text, retry=decision)
    return Outcome(status=TaskStatus.ERROR, traceback=text)


def record_outcome(run: TaskRun, outcome: Outcome) -> bool:
    """Write the outcome if this worker still holds the lease (runs in a slot thread)."""
    logs = run.ctx.log_lines
    if outcome.retry is not None:
        child = run.queue.retry(
            run.record,
            delay=outcome.retry.delay,
            attempts_left=outcome.retry.attempts_left,
            traceback=outcome.traceback,
            logs=logs,
            times=outcome.times(),
        )
        written = child is not None
        if written and signals.task_retried.has_listeners():
            _send(signals.task_retried, run, retry_uuid=child, traceback=outcome.traceback)
    else:
        written = run.queue.finish(
            run.record,
            logs=logs,
            status=outcome.status,
            returning=outcome.returning,
            traceback=outcome.traceback,
            cancel_reason=outcome.cancel_reason,
            **outcome.times(),
        )
        if written:
            send_finished(run, outcome)
    if not written:
        log_lost_lease(run, outcome)
    return written


def _report_write_failure(future: Any) -> None:
    exc = future.exception()
    if exc is not None:
        logger.error("an outcome could not be written (the task is rescued when its lease expires): %r", exc)


def send_finished(run: TaskRun, outcome: Outcome) -> None:
    if signals.task_finished.has_listeners():
        _send(
            signals.task_finished,
            run,
            status=outcome.status,
            returning=outcome.returning,
            traceback=outcome.traceback,
        )


def log_lost_lease(run: TaskRun, outcome: Outcome) -> None:
    logger.warning(
        "task=%s uuid=%s lost its lease (rescued elsewhere or released); outcome %s discarded",
        run.schema.name,
        run.uuid,
        outcome.status,
    )


def _send(signal: Any, run: TaskRun, **kwargs: Any) -> None:
    # A receiver's bug is logged; it must not fail the task or the worker.
    for receiver, result in signal.send_robust(sender=run.schema.name, uuid=run.uuid, **kwargs):
        if isinstance(result, Exception):
            logger.error("signal receiver %r failed for task %s", receiver, run.uuid, exc_info=result)


def _retrying_db_errors(func: Any, *args: Any, attempts: int = 8) -> Any:
    """Call ``func``, retrying through a short database outage (about 30 s in all).

    If the database stays away, the exception propagates and the task stays in
    ``process`` until its lease expires and it is rescued: at-least-once, never lost.
    Other database errors (a value the database refuses, say) are not retried: the
    worker then records them as the task's error.
    """
    from django.db import InterfaceError, OperationalError, connections

    delay = 0.25
    for attempt in range(attempts):
        try:
            return func(*args)
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            for conn in connections.all(initialized_only=True):
                conn.close()
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
    return None


def _log(run: TaskRun, outcome: Outcome, seconds: float) -> None:
    level = logging.INFO if outcome.status in (TaskStatus.SUCCESS, TaskStatus.CANCEL) else logging.WARNING
    detail = ""
    if outcome.status == TaskStatus.RETRY and outcome.retry:
        detail = f" retry_in={outcome.retry.delay:.2f}s attempts_left={outcome.retry.attempts_left}"
    elif outcome.status == TaskStatus.ERROR:
        detail = " error=" + (outcome.traceback.strip().splitlines() or ["?"])[-1][:200]
    elif outcome.status == TaskStatus.CANCEL:
        detail = f" reason={outcome.cancel_reason!r}"
    logger.log(
        level,
        "task=%s uuid=%s status=%s attempt=%d duration=%.3fs%s",
        run.schema.name,
        run.uuid,
        outcome.status,
        run.record.attempt,
        seconds,
        detail,
    )
