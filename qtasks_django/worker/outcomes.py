"""Recording a run's outcome: the fenced write, the signals, and one log line per task."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .. import signals
from ..queue.finishes import Finish
from ..status import TaskStatus

if TYPE_CHECKING:
    from ..tasks.execution import Outcome
    from ..tasks.run import TaskRun

logger = logging.getLogger("qtasks_django.worker")


def record_outcome(run: TaskRun, outcome: Outcome) -> bool:
    """Write the outcome if this worker still holds the lease (runs in a worker thread)."""
    logs = run.ctx.log_lines
    if outcome.retry is not None:
        child = run.finishes.retry(
            run.record,
            delay=outcome.retry.delay,
            attempts_left=outcome.retry.attempts_left,
            traceback=outcome.traceback,
            logs=logs,
            times=outcome.times(),
        )
        written = child is not None
        if written and signals.task_retried.has_listeners():
            send_signal(signals.task_retried, run, retry_uuid=child, traceback=outcome.traceback)
    else:
        written = run.finishes.finish(
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


def as_finish(run: TaskRun, outcome: Outcome) -> Finish:
    """Return a plain outcome (no retry, no log lines) as the queue's batched ``Finish``."""
    return Finish(
        uuid=run.uuid,
        lease_token=run.record.lease_token,
        status=outcome.status,
        returning=outcome.returning,
        traceback=outcome.traceback,
        cancel_reason=outcome.cancel_reason,
        started_at=outcome.started_at,
        finished_at=outcome.finished_at,
    )


def is_plain(run: TaskRun, outcome: Outcome) -> bool:
    """Whether the outcome can share a batched statement (no retry, no log lines)."""
    return outcome.retry is None and not run.ctx.log_lines


def send_finished(run: TaskRun, outcome: Outcome) -> None:
    if signals.task_finished.has_listeners():
        send_signal(
            signals.task_finished,
            run,
            status=outcome.status,
            returning=outcome.returning,
            traceback=outcome.traceback,
        )


def send_signal(signal: Any, run: TaskRun, **kwargs: Any) -> None:
    """Send ``signal`` for ``run``; a receiver's bug is logged, never fails the task or the worker."""
    for receiver, result in signal.send_robust(sender=run.schema.name, uuid=run.uuid, **kwargs):
        if isinstance(result, Exception):
            logger.error("signal receiver %r failed for task %s", receiver, run.uuid, exc_info=result)


def log_lost_lease(run: TaskRun, outcome: Outcome) -> None:
    logger.warning(
        "task=%s uuid=%s lost its lease (rescued elsewhere or released); outcome %s discarded",
        run.schema.name,
        run.uuid,
        outcome.status,
    )


def report_write_failure(future: Future[bool]) -> None:
    exc = future.exception()
    if exc is not None:
        logger.error("an outcome could not be written (the task is rescued when its lease expires): %r", exc)


def log_outcome(run: TaskRun, outcome: Outcome, seconds: float) -> None:
    """Log the run's one line: task, uuid, status, attempt, duration and what ended it."""
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
