"""Writing the ends of runs in batches: one fenced statement for many finished tasks.

A busy worker finishes tasks faster than it can commit them one by one. The
``OutcomeWriter`` thread takes every outcome waiting when it wakes up and writes
the plain ones (no log lines, no retry) with one ``UPDATE ... FROM (VALUES ...)``
on PostgreSQL, each row still fenced by its own lease token; the rest go through
``record_outcome`` one by one. Each caller learns whether its own row was written.
"""

from __future__ import annotations

import logging
import queue as queue_lib
import threading
import traceback as traceback_lib
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, InterfaceError, OperationalError, connections, transaction
from django.utils import timezone

from . import notifiers
from .serialization import json_text
from .status import TaskStatus

if TYPE_CHECKING:
    from .processing import Outcome
    from .runs import TaskRun

logger = logging.getLogger("qtasks_django.worker")
#: Most outcomes written by one statement.
BATCH = 200


class OutcomeWriter:
    """A thread that records outcomes, batching those that can share a statement."""

    def __init__(self, using: str = "default") -> None:
        self.using = using
        self._pending: queue_lib.SimpleQueue[tuple[TaskRun, Outcome, Future[bool]] | None] = (
            queue_lib.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._unwritten = 0
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

    def _serve(self) -> None:
        try:
            while True:
                batch, stop = self._take()
                plain = [item for item in batch if _is_plain(item[0], item[1])]
                for run, outcome, future in batch:
                    if not _is_plain(run, outcome):
                        _settle(future, _write_one, run, outcome)
                if plain:
                    self._write_plain(plain)
                if stop:
                    return
        finally:
            for conn in connections.all(initialized_only=True):
                conn.close()

    def _take(self) -> tuple[list[tuple[TaskRun, Outcome, Future[bool]]], bool]:
        first = self._pending.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < BATCH:
            try:
                item = self._pending.get_nowait()
            except queue_lib.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _write_plain(self, items: list[tuple[TaskRun, Outcome, Future[bool]]]) -> None:
        from .processing import _retrying_db_errors, log_lost_lease, send_finished

        try:
            written = _retrying_db_errors(
                finish_many, [(run, outcome) for run, outcome, _ in items], self.using
            )
        except (OperationalError, InterfaceError) as exc:  # the database stayed away
            for _, _, future in items:
                future.set_exception(exc)
            return
        except DatabaseError:
            # One value the database refuses (a NUL in a string, say) fails the whole
            # statement: write them one by one so only that task ends in error.
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


def finish_many(items: list[tuple[TaskRun, Outcome]], using: str) -> set[Any]:
    """Write plain outcomes, each fenced by its lease token; return the uuids written."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=using):
            return {
                run.uuid
                for run, outcome in items
                if run.queue.finish(
                    run.record,
                    status=outcome.status,
                    returning=outcome.returning,
                    traceback=outcome.traceback,
                    cancel_reason=outcome.cancel_reason,
                    **outcome.times(),
                )
            }
    return _finish_many_postgres(items, connection)


def _finish_many_postgres(items: list[tuple[TaskRun, Outcome]], connection: Any) -> set[Any]:
    # The rows come as one array per column, so the text is the same whatever the
    # batch size: it is prepared once per connection, not planned for every batch
    # (0.6 ms each). The "uuid = ANY" condition repeats the join's, so that the plan
    # looks the rows up by primary key even when the table's statistics are stale;
    # without it the planner could walk every running row for each batch.
    import psycopg

    from .models import TaskRecord

    now = timezone.now()
    columns = {
        "uuid": ("uuid", [run.uuid for run, _ in items]),
        "token": ("uuid", [run.record.lease_token for run, _ in items]),
        "status": ("text", [str(outcome.status) for _, outcome in items]),
        "returning": ("jsonb", [json_text(outcome.returning) for _, outcome in items]),
        "traceback": ("text", [outcome.traceback for _, outcome in items]),
        "cancel_reason": ("text", [outcome.cancel_reason for _, outcome in items]),
        "started_at": ("timestamptz", [outcome.started_at for _, outcome in items]),
        "finished_at": ("timestamptz", [outcome.finished_at or now for _, outcome in items]),
    }
    table = connection.ops.quote_name(TaskRecord._meta.db_table)
    notifier = notifiers.get_notifier(connection.alias)
    # PostgreSQL's own notifier sends the wake-ups in the same statement.
    wake = 'pg_notify(%s, upd."uuid"::text)' if notifier.transactional else "%s"
    names = ", ".join(f'"{name}"' for name in columns)
    arrays = ", ".join(f"%s::{kind}[]" for kind, _ in columns.values())
    # "returning" is a reserved word: every identifier is quoted.
    sql = (
        f"WITH v ({names}) AS (SELECT * FROM unnest({arrays})), "
        f'upd AS (UPDATE {table} AS t SET "status" = v."status", "returning" = v."returning", '
        f'"traceback" = v."traceback", "cancel_reason" = v."cancel_reason", "finished_at" = v."finished_at", '
        f'"started_at" = COALESCE(v."started_at", t."started_at"), '
        f'"updated_at" = %s, "lease_token" = NULL, "lease_expires_at" = NULL FROM v '
        f'WHERE t."uuid" = v."uuid" AND t."uuid" = ANY(%s) AND t."status" = %s AND t."lease_token" = v."token" '
        f'RETURNING t."uuid") '
        f'SELECT upd."uuid", {wake} FROM upd'
    )
    params = [values for _, values in columns.values()]
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            sql, [*params, now, params[0], str(TaskStatus.PROCESS), notifiers.FINISHED], prepare=True
        )
        written = {row[0] for row in cursor.fetchall()}
    if not notifier.transactional:
        for uuid in written:
            notifier.send(notifiers.FINISHED, str(uuid))
    return written


def _write_one(run: TaskRun, outcome: Outcome) -> bool:
    """Write one outcome; if the database refuses it, write the refusal as the task's error."""
    from .processing import Outcome, _retrying_db_errors, record_outcome

    try:
        return bool(_retrying_db_errors(record_outcome, run, outcome))
    except (OperationalError, InterfaceError):
        raise
    except DatabaseError:
        refusal = Outcome(status=TaskStatus.ERROR, traceback=traceback_lib.format_exc())
        return bool(_retrying_db_errors(record_outcome, run, refusal))


def _is_plain(run: TaskRun, outcome: Outcome) -> bool:
    return outcome.retry is None and not run.ctx.log_lines


def _settle(future: Future[bool], func: Any, *args: Any) -> None:
    try:
        future.set_result(func(*args))
    except BaseException as exc:
        future.set_exception(exc)
