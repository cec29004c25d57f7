"""Run one claimed task to its outcome and record it (the worker's per-task coroutine)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback as traceback_lib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from .conf import settings
from .context import current_task_uuid
from .exceptions import TaskCancelError, TaskTimeoutError
from .executors import BaseTaskExecutor
from .retry import RetryDecision
from .runs import TaskRun
from .status import TaskStatus

logger = logging.getLogger("qtasks_django.worker")


@dataclass(kw_only=True)
class Outcome:
    """How a run ended, before it is written."""

    status: str
    returning: Any = None
    traceback: str = ""
    cancel_reason: str = ""
    retry: RetryDecision | None = None


async def process(run: TaskRun) -> Outcome:
    """Run the task under its ``max_time`` and record the outcome; never raises for task errors."""
    started = time.monotonic()
    executor_cls = run.schema.executor or import_string(settings.DEFAULT_EXECUTOR)
    executor: BaseTaskExecutor = executor_cls(task_func=run.schema, run=run)
    token = current_task_uuid.set(run.uuid)
    try:
        async with _time_limit(run.schema.max_time, run):
            returning = await executor.execute()
        outcome = Outcome(status=TaskStatus.SUCCESS, returning=returning)
    except TaskCancelError as exc:
        outcome = Outcome(status=TaskStatus.CANCEL, cancel_reason=exc.reason or str(exc))
    except asyncio.CancelledError:
        run.stop("worker shut down")
        raise  # a forced shutdown: the task goes back to the queue, nothing is written
    except BaseException as exc:
        outcome = _failure(run, executor, exc)
    finally:
        current_task_uuid.reset(token)
    await run.run_sync(_retrying_db_errors, record_outcome, run, outcome)
    _log(run, outcome, time.monotonic() - started)
    return outcome


@contextlib.asynccontextmanager
async def _time_limit(max_time: float | None, run: TaskRun) -> AsyncIterator[None]:
    """Cancel the run at ``max_time``; a sync function's thread is told to stop and its result discarded."""
    if max_time is None:
        yield
        return
    try:
        async with asyncio.timeout(max_time) as scope:
            yield
    except TimeoutError:
        if not scope.expired():
            raise  # the task's own TimeoutError
        run.stop(f"max_time of {max_time}s exceeded")
        raise TaskTimeoutError(f"Time limit exceeded for task {run.schema.name}: {max_time} seconds") from None


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
        )
        written = child is not None
    else:
        written = run.queue.finish(
            run.record,
            logs=logs,
            status=outcome.status,
            returning=outcome.returning,
            traceback=outcome.traceback,
            cancel_reason=outcome.cancel_reason,
        )
    if not written:
        logger.warning(
            "task=%s uuid=%s lost its lease (rescued elsewhere or released); outcome %s discarded",
            run.schema.name,
            run.uuid,
            outcome.status,
        )
    return written


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
