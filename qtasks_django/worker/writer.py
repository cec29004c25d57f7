"""Writing the ends of runs in batches: one fenced statement for many finished tasks.

A busy worker finishes tasks faster than it can commit them one by one. The
``OutcomeWriter`` thread takes every outcome waiting when it wakes up and writes
the plain ones (no log lines, no retry) with one ``UPDATE ... FROM (VALUES ...)``
on PostgreSQL, each row still fenced by its own lease token; the rest go through
``record_outcome`` one by one. Each caller learns whether its own row was written.
The statement itself is the queue's (``Finishes.finish_many``).
"""

from __future__ import annotations

import logging
import queue as queue_lib
import threading
import traceback as traceback_lib
import uuid as uuid_lib
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from django.db import connections

from ..queue.finishes import Finishes
from ..queue.outages import UNAVAILABLE, retrying_db_errors
from ..status import TaskStatus
from ..tasks.execution import Outcome
from .outcomes import as_finish, is_plain, log_lost_lease, record_outcome, send_finished

if TYPE_CHECKING:
    from ..tasks.run import TaskRun

logger = logging.getLogger("qtasks_django.worker")
#: Most outcomes written by one statement.
BATCH = 200
#: Seconds the writer waits for one more outcome before writing those it has.
LINGER = 0.001


class OutcomeWriter:
    """A thread that records outcomes, batching those that can share a statement."""

    def __init__(self, finishes: Finishes) -> None:
        self.finishes = finishes
        self._pending: queue_lib.SimpleQueue[tuple[TaskRun, Outcome, Future[bool]] | None] = (
            queue_lib.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._unwritten = 0
        self.lost: list[uuid_lib.UUID] = []  # see lost_runs()
        self._thread = threading.Thread(target=self._serve, name="qtasks-finish", daemon=True)
        self._thread.start()

    def submit(self, run: TaskRun, outcome: Outcome) -> Future[bool]:
        """Queue ``outcome``; the future tells whether this run's lease still held (it was written)."""
        future: Future[bool] = Future()
        with self._lock:
            self._unwritten += 1
        future.add_done_callback(self._written)
        self._pending.put((run, outcome, future))
        return future

    @property
    def busy(self) -> bool:
        """Whether outcomes are queued or being written (a burst worker waits for them)."""
        return self._unwritten > 0

    def _written(self, _future: Future[bool]) -> None:
        with self._lock:
            self._unwritten -= 1

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        self._pending.put(None)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread runs: the worker stops itself if it died (nothing would be recorded)."""
        return self._thread.is_alive()

    def _serve(self) -> None:
        batch: list[tuple[TaskRun, Outcome, Future[bool]]] = []
        try:
            while True:
                batch, stop = self._take()
                plain = [item for item in batch if is_plain(item[0], item[1])]
                for run, outcome, future in batch:
                    if not is_plain(run, outcome):
                        _settle(future, _write_one, run, outcome)
                if plain:
                    self._write_plain(plain)
                if stop:
                    return
        except BaseException as exc:
            # A bug here must not leave runs waiting for their outcome: settle them, log
            # it as critical and end the thread (the worker sees ``alive`` go false and stops).
            self._fail_pending(batch, exc)
        finally:
            for conn in connections.all(initialized_only=True):
                conn.close()

    def _fail_pending(self, batch: list[tuple[TaskRun, Outcome, Future[bool]]], exc: BaseException) -> None:
        logger.critical("the outcome writer failed; the worker will stop", exc_info=exc)
        self._lose(batch, exc)
        self._lose(self._drain(), exc)

    def lost_runs(self) -> list[uuid_lib.UUID]:
        """Runs whose outcome this writer never wrote because it died: the worker releases them."""
        if self.alive:
            return []
        # Outcomes queued after it died: no thread reads the queue any more.
        self._lose(self._drain(), RuntimeError("the outcome writer had stopped"))
        return list(self.lost)

    def _drain(self) -> list[tuple[TaskRun, Outcome, Future[bool]]]:
        items: list[tuple[TaskRun, Outcome, Future[bool]]] = []
        while True:
            try:
                item = self._pending.get_nowait()
            except queue_lib.Empty:
                return items
            if item is not None:
                items.append(item)

    def _lose(self, items: list[tuple[TaskRun, Outcome, Future[bool]]], exc: BaseException) -> None:
        for run, _, future in items:
            if not future.done():
                self.lost.append(run.uuid)
                future.set_exception(exc)

    def _take(self) -> tuple[list[tuple[TaskRun, Outcome, Future[bool]]], bool]:
        first = self._pending.get()
        if first is None:
            return [], True
        batch = [first]
        lingered = False
        while len(batch) < BATCH:
            try:
                item = self._pending.get_nowait()
            except queue_lib.Empty:
                if lingered:
                    break
                # Once, a moment for one more outcome: a single task process answers one
                # task after another, and a statement per outcome or two costs the worker
                # more than the wait (a slot is free once it submitted, but behind a gate).
                lingered = True
                try:
                    item = self._pending.get(timeout=LINGER)
                except queue_lib.Empty:
                    break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _write_plain(self, items: list[tuple[TaskRun, Outcome, Future[bool]]]) -> None:
        try:
            written = retrying_db_errors(
                self.finishes.finish_many, [as_finish(run, outcome) for run, outcome, _ in items]
            )
        except UNAVAILABLE as exc:  # the database stayed away
            for _, _, future in items:
                future.set_exception(exc)
            return
        except Exception:
            # One value the database or its driver refuses fails the whole statement:
            # write them one by one so only that task ends in error.
            logger.warning("a batch of outcomes was refused; writing them one by one", exc_info=True)
            for run, outcome, future in items:
                _settle(future, _write_one, run, outcome)
            return
        for run, outcome, future in items:
            ok = run.uuid in written
            if ok:
                send_finished(run, outcome)
            else:
                log_lost_lease(run, outcome)
            future.set_result(ok)


def _write_one(run: TaskRun, outcome: Outcome) -> bool:
    """Write one outcome; if it is refused, write the refusal as the task's error instead."""
    try:
        return bool(retrying_db_errors(record_outcome, run, outcome))
    except UNAVAILABLE:
        raise
    except Exception:  # a DataError, or the driver failing to encode a value
        logger.warning("task %s: its outcome was refused; recording the refusal as its error", run.uuid)
        reason = traceback_lib.format_exc()
        if run.ctx.log_lines:  # they may be what was refused: the refusal is written without them
            reason += f"\n({len(run.ctx.log_lines)} log line(s) of the run were not kept)"
            run.ctx.log_lines.clear()
        return bool(retrying_db_errors(record_outcome, run, refusal(outcome, reason)))


def refusal(outcome: Outcome, reason: str) -> Outcome:
    """The error that replaces an outcome that could not be stored, keeping what it said."""
    kept = [f"The task's outcome ({outcome.status}) could not be stored:\n\n{reason}"]
    if outcome.traceback:
        kept.append(f"The task's own traceback:\n\n{outcome.traceback}")
    if outcome.cancel_reason:
        kept.append(f"The cancel reason: {outcome.cancel_reason}")
    if outcome.status == TaskStatus.SUCCESS:
        kept.append(f"The returned value: {_short(outcome.returning)}")
    return Outcome(
        status=TaskStatus.ERROR,
        traceback="\n\n".join(kept),
        started_at=outcome.started_at,
        finished_at=outcome.finished_at,
    )


def _short(value: Any, limit: int = 2000) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _settle(future: Future[bool], func: Any, *args: Any) -> None:
    try:
        future.set_result(func(*args))
    except BaseException as exc:
        future.set_exception(exc)
