"""Writing new task rows: one prepared INSERT, or COPY for many, with the wake-up.

The row's values were validated and encoded by the task floor (``rows.NewRow``); here
they become the statement's values without a model instance. A ``TaskRecord`` is made
only for ``task_enqueued`` receivers or for databases other than PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import JSONField

from .. import notifiers, signals
from ..models import TaskRecord
from ..serialization import json_text
from . import unique
from .cursors import kept_cursor
from .rows import NewRow

#: Rows per INSERT of a bulk enqueue where COPY is not available.
BULK_CHUNK = 1000
#: Only the unique key's constraint (``qtasks_task_unique_key``) turns a write into nothing:
#: any other conflict (a schedule's firing already made) still raises ``IntegrityError``.
ON_KEY_CONFLICT = (
    "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL "
    "AND (status = 'new' OR (status = 'process' AND unique_while_running)) DO NOTHING"
)
#: Unique rows per INSERT of a bulk enqueue (26 parameters each, under PostgreSQL's 65,535).
UNIQUE_CHUNK = 1000


def insert(rows: Sequence[NewRow], *, using: str) -> None:
    """Write ``rows`` in the caller's transaction and wake workers when it commits.

    A row with a unique key that a waiting (or running) task holds is not written: its
    ``existing`` is set to that task instead.
    """
    if not rows:
        return
    notifier = notifiers.get_notifier(using)
    postgres = connections[using].vendor == "postgresql"
    # PostgreSQL's own notifier wakes workers from inside the statement that writes
    # the rows; any other (Redis) is told once the caller's transaction commits.
    in_statement = postgres and notifier.transactional
    plain = [row for row in rows if row.unique_key is None]
    if postgres:
        if len(plain) == 1:
            _insert_one(plain[0], using=using, notify=in_statement)
        elif plain:
            _copy(plain, using=using, notify=in_statement)
    elif plain:
        with transaction.atomic(using=using):
            TaskRecord.objects.using(using).bulk_create(
                [as_record(row) for row in plain], batch_size=BULK_CHUNK
            )
    keyed = [row for row in rows if row.unique_key is not None]
    if postgres:
        one = partial(_insert_one, using=using, notify=in_statement)
        if len(keyed) > 1:
            many = partial(_insert_unique_many, using=using, notify=in_statement)
            unique.insert_many(keyed, many, one, using=using)
        else:
            for row in keyed:
                unique.insert(row, one, using=using)
    else:
        for row in keyed:
            unique.insert(row, lambda r: _save_unique(r, using=using), using=using)
    written = [row for row in rows if row.existing is None]
    if not in_statement:
        for payload in {enqueued_payload(row) for row in written}:
            notifier.send_on_commit(notifiers.ENQUEUED, payload)
    if signals.task_enqueued.has_listeners():
        for row in written:
            record = as_record(row)
            signals.task_enqueued.send(sender=record.task_name, uuid=record.uuid, task=record)


def enqueued_payload(row: NewRow) -> str:
    """The wake-up's payload: "ready" for a task that may start now, behind no limit.

    Its queue tells a worker that serves other queues to sleep on; "ready" tells a worker
    whose claim then finds nothing that another took the task, and that no delayed,
    limited or rescued task needs a look.
    """
    fields = row.fields
    limited = fields.get("concurrency_key") is not None or fields.get("rate_key") is not None
    if limited or fields["eta"] > fields["created_at"]:
        return row.queue
    return notifiers.ready_payload(row.queue)


def as_record(row: NewRow) -> TaskRecord:
    """Return the row as a model instance (made once, on first use)."""
    if row.record is None:
        row.record = RowBuilder.get().build(**row.fields)
    return row.record


def _insert_one(row: NewRow, *, using: str, notify: bool) -> bool:
    # One statement, one round trip: the INSERT and (``notify``) the wake-up.
    # PostgreSQL delivers the NOTIFY only if the caller's transaction commits. The
    # statement never changes, so it is prepared once per connection and bound
    # server-side (Django's default cursor would quote 26 parameters into the text
    # each time). A row with a unique key is written ``ON CONFLICT DO NOTHING``:
    # ``False`` when its key was taken (nothing written, and no one woken).

    connection = connections[using]
    plan = InsertPlan.for_connection(connection)
    values = plan.values(row)
    if row.unique_key is None:
        sql = plan.insert_and_notify_sql if notify else plan.insert_sql
    else:
        sql = plan.insert_unique_and_notify_sql if notify else plan.insert_unique_sql
    with connection.wrap_database_errors:
        cursor = kept_cursor(connection)
        params = [*values, notifiers.ENQUEUED, enqueued_payload(row)] if notify else values
        cursor.execute(sql, params, prepare=True)
        return row.unique_key is None or bool(cursor.fetchall())


def _insert_unique_many(rows: Sequence[NewRow], *, using: str, notify: bool) -> set[Any]:
    # Many unique rows: multi-row INSERTs with ON CONFLICT DO NOTHING (COPY has no such
    # clause), in chunks below PostgreSQL's 65,535 parameters; the uuids written come back.

    connection = connections[using]
    plan = InsertPlan.for_connection(connection)
    written: set[Any] = set()
    with connection.wrap_database_errors:
        cursor = kept_cursor(connection)
        for start in range(0, len(rows), UNIQUE_CHUNK):
            chunk = rows[start : start + UNIQUE_CHUNK]
            cursor.execute(
                plan.insert_unique_many_sql(len(chunk)), [v for row in chunk for v in plan.values(row)]
            )
            written.update(uuid for (uuid,) in cursor.fetchall())
        payloads = sorted({enqueued_payload(row) for row in rows if row.uuid in written})
        if notify and payloads:
            cursor.execute(
                "SELECT pg_notify(%s, q) FROM unnest(%s::text[]) AS q", [notifiers.ENQUEUED, payloads]
            )
    return written


def _save_unique(row: NewRow, *, using: str) -> bool:
    # Elsewhere than PostgreSQL: a savepoint, so a refused row leaves the caller's
    # transaction usable.
    try:
        with transaction.atomic(using=using):
            TaskRecord.objects.using(using).bulk_create([as_record(row)])
    except IntegrityError:
        if unique.holding(row.unique_key or "", using=using) is None:
            raise  # refused for another reason than the key
        return False
    return True


def _copy(rows: Sequence[NewRow], *, using: str, notify: bool) -> None:
    # Many rows: COPY streams them without a statement of tens of thousands of
    # placeholders to parse; the wake-ups (``notify``) follow in the same transaction.
    connection = connections[using]
    plan = InsertPlan.for_connection(connection)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        # COPY goes through psycopg's own cursor: without this a refused row raises
        # psycopg's error, not Django's IntegrityError the callers catch.
        with connection.wrap_database_errors, cursor.cursor.copy(plan.copy_sql) as copy:
            for row in rows:
                copy.write_row(plan.values(row))
        if notify:
            payloads = sorted({enqueued_payload(row) for row in rows})
            cursor.execute(
                "SELECT pg_notify(%s, q) FROM unnest(%s::text[]) AS q", [notifiers.ENQUEUED, payloads]
            )


class RowBuilder:
    """Makes unsaved task rows the quick way: positional values in the model's field order.

    ``TaskRecord(**fields)`` walks every field and pops its keyword. Positional values
    take Django's fast path (the one ``from_db`` uses) and give the same instance;
    fields left out get their model defaults.
    """

    _instance: RowBuilder | None = None

    def __init__(self) -> None:
        self._model = TaskRecord
        self._defaults = [(f.attname, f.get_default) for f in TaskRecord._meta.concrete_fields]

    @classmethod
    def get(cls) -> RowBuilder:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def build(self, **values: Any) -> TaskRecord:
        row = self._model(
            *[values.pop(name) if name in values else default() for name, default in self._defaults]
        )
        if values:
            raise TypeError(f"TaskRecord has no fields {', '.join(sorted(values))}")
        return row


class InsertPlan:
    """How task rows are written on PostgreSQL: the statements and each column's value.

    Built once per process (the model does not change at run time): Django's general
    per-field ``get_db_prep_save`` and name quoting cost more than the INSERT's round
    trip on a fast server. Every value was built by the enqueue (validated,
    JSON-normalised, aware datetimes), so JSON fields only need their text and the rest
    go to psycopg as they are.
    """

    _plans: dict[str, InsertPlan] = {}

    def __init__(self, connection: Any) -> None:
        quote = connection.ops.quote_name
        fields = list(TaskRecord._meta.concrete_fields)
        table = quote(TaskRecord._meta.db_table)
        columns = ", ".join(quote(f.column) for f in fields)
        # (field name, is JSON, its default): a constant default is computed (and
        # encoded) once, a callable one (uuid4, now, list) for each row that needs it.
        self._columns: list[tuple[str, bool, Any]] = []
        for f in fields:
            is_json = isinstance(f, JSONField)
            if f.has_default() and callable(f.default):
                default = _encoding(f.get_default) if is_json else f.get_default
            else:
                constant = f.get_default()
                default = _constant(json_text(constant) if is_json else constant)
            self._columns.append((f.attname, is_json, default))
        row = ", ".join("%s::jsonb" if is_json else "%s" for _, is_json, _ in self._columns)
        self.insert_sql = f"INSERT INTO {table} ({columns}) VALUES ({row})"
        self._insert_head, self._row = f"INSERT INTO {table} ({columns}) VALUES ", f"({row})"
        # One row: the wake-up's payload (``enqueued_payload``) is bound with it.
        self.insert_and_notify_sql = (
            f"WITH ins AS ({self.insert_sql} RETURNING queue) SELECT pg_notify(%s, %s) FROM ins"
        )
        self.copy_sql = f"COPY {table} ({columns}) FROM STDIN"
        # A unique row: nothing is written (and no one woken) while another holds its key.
        # Both return a row only when the row was written.
        self.insert_unique_sql = f"{self.insert_sql} {ON_KEY_CONFLICT} RETURNING queue"
        self.insert_unique_and_notify_sql = (
            f"WITH ins AS ({self.insert_unique_sql}) SELECT pg_notify(%s, %s) FROM ins"
        )

    def insert_unique_many_sql(self, count: int) -> str:
        """``count`` rows in one INSERT, each written unless its unique key is taken; returns the uuids written."""
        return f"{self._insert_head}{', '.join([self._row] * count)} {ON_KEY_CONFLICT} RETURNING uuid"

    @classmethod
    def for_connection(cls, connection: Any) -> InsertPlan:
        plan = cls._plans.get(connection.vendor)
        if plan is None:
            plan = cls._plans[connection.vendor] = cls(connection)
        return plan

    def values(self, row: NewRow) -> list[Any]:
        """Return the row's column values in the statements' order (JSON as text)."""
        fields, texts = row.fields, row.json
        values: list[Any] = []
        for name, is_json, default in self._columns:
            if name in texts:
                values.append(texts[name])
            elif name in fields:
                value = fields[name]
                values.append(json_text(value) if is_json else value)
            else:
                values.append(default())
        return values


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _encoding(make: Callable[[], Any]) -> Callable[[], str | None]:
    return lambda: json_text(make())
