"""Run one task to its ``Outcome``: the executor, and how the run ended, classified.

The same code runs in the worker (async tasks) and in a task process (sync tasks);
what happens to the outcome next (limits, writing, signals) is the worker's.
"""

from __future__ import annotations

import asyncio
import traceback as traceback_lib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from ..conf import settings
from ..exceptions import TaskCancelError
from ..status import TaskStatus
from .executors import BaseTaskExecutor
from .retry import RetryDecision

if TYPE_CHECKING:
    from .run import TaskRun


@dataclass(kw_only=True)
class Outcome:
    """How a run ended, before it is written."""

    status: str
    returning: Any = None
    traceback: str = ""
    cancel_reason: str = ""
    retry: RetryDecision | None = None
    started_at: datetime | None = None
    """When the run began (a task claimed ahead waits a little after its claim)."""
    finished_at: datetime | None = None
    """When the run ended (it is written a little later, in a batch)."""

    def times(self) -> dict[str, Any]:
        """The run's start and end, as fields to write (only those known)."""
        return {k: v for k, v in (("started_at", self.started_at), ("finished_at", self.finished_at)) if v}


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


def _failure(run: TaskRun, executor: BaseTaskExecutor, exc: BaseException) -> Outcome:
    text = "".join(traceback_lib.format_exception(exc))
    decision = executor.retry_decision(exc, attempts_left=run.record.retry, attempt=run.record.attempt)
    if decision is not None:
        return Outcome(status=TaskStatus.RETRY, traceback=text, retry=decision)
    return Outcome(status=TaskStatus.ERROR, traceback=text)
