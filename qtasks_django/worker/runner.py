"""What a slot does with a claimed row: make its run, run it, and end it if it cannot run."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback as traceback_lib
import uuid as uuid_lib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import signals
from ..exceptions import TaskNotRegistered
from ..queue.finishes import Finishes
from ..status import TaskStatus
from ..tasks.execution import Outcome
from ..tasks.run import TaskRun
from ..tasks.task import SyncTask
from .execute import execute
from .outcomes import record_outcome

if TYPE_CHECKING:
    from ..models import TaskRecord
    from ..tasks.app import QueueTasks
    from .claim_ahead import ClaimAhead
    from .processes import TaskProcesses
    from .threads import TaskThreads
    from .watchdog import LoopWatchdog
    from .writer import OutcomeWriter

logger = logging.getLogger("qtasks_django.worker")


class TaskRunner:
    """Turn claimed rows into runs and run them, each to a recorded outcome."""

    def __init__(
        self,
        *,
        app: QueueTasks,
        worker_id: str,
        finishes: Finishes,
        threads: TaskThreads,
        watchdog: LoopWatchdog,
        ahead: ClaimAhead,
        components: dict[str, Any],
    ) -> None:
        self.app = app
        self.worker_id = worker_id
        self.finishes = finishes
        self.threads = threads
        self.watchdog = watchdog
        self.ahead = ahead
        self.components = components
        self.processes: TaskProcesses | None = None  # where sync tasks run, if not in threads
        self.writer: OutcomeWriter | None = None  # set when the worker starts its threads
        self.processed = 0

    def prepare(self, record: TaskRecord) -> TaskRun:
        """Return the run of a claimed row (no I/O: it is called on the event loop too)."""
        schema = self.app.tasks.get(record.task_name)
        if schema is None:
            known = ", ".join(sorted(self.app.tasks)) or "none"
            raise TaskNotRegistered(f"no task named {record.task_name!r} in this worker (known: {known})")
        return TaskRun(
            record=record,
            schema=schema,
            task=SyncTask(schema, owner=self.app),
            finishes=self.finishes,
            threads=self.threads,
            components=self.components,
        )

    async def process(self, run: TaskRun) -> None:
        """Run ``run`` and record its outcome; a failure of our own is recorded as the task's error."""
        self.watchdog.track(run)
        started = time.monotonic()
        if signals.task_started.has_listeners():  # receivers may use the ORM: not on the loop
            await run.run_sync(
                signals.task_started.send_robust,
                sender=run.schema.name,
                uuid=run.uuid,
                attempt=run.record.attempt,
                worker_id=self.worker_id,
            )
        try:
            await execute(run, self.processes, self.writer)
            self.processed += 1
            self.ahead.observe(time.monotonic() - started)
        except asyncio.CancelledError:
            raise
        except BaseException:  # an executor or storage failure: record it, keep the worker
            logger.exception("task=%s uuid=%s could not be processed", run.schema.name, run.uuid)
            failure = Outcome(status=TaskStatus.ERROR, traceback=traceback_lib.format_exc())
            await asyncio.wrap_future(self.threads.submit(_quietly, record_outcome, run, failure))

    def unwritten(self) -> list[uuid_lib.UUID]:
        """Runs that ended but whose outcome was never written (the outcome writer died)."""
        return self.writer.lost_runs() if self.writer is not None else []

    def close(self) -> None:
        """End the task processes, write the outcomes still queued, then stop the threads."""
        if self.processes is not None:
            self.processes.close()
        if self.writer is not None:
            self.writer.close()
        self.threads.close()

    def fail(self, record: TaskRecord, message: str) -> None:
        """End a row that cannot run (an unknown task, malformed arguments) in error."""
        self.finishes.finish(record, status=TaskStatus.ERROR, traceback=message)
        logger.warning("task=%s uuid=%s status=error error=%s", record.task_name, record.uuid, message)


def _quietly(func: Callable[..., Any], *args: Any) -> None:
    try:
        func(*args)
    except Exception:
        logger.exception("recording a failure failed")
