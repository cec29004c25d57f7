"""Task rows on their way into the table: validated values, written without a model instance.

Enqueue is the callers' hot path, and on a bulk enqueue Python's time per row is the
limit, not the server's. A ``NewRow`` carries what ``DatabaseQueue.build`` validated,
with the JSON text it encoded while validating; ``InsertPlan`` turns it into the
values of the INSERT or COPY. A ``TaskRecord`` is only made when something needs one
(a ``task_enqueued`` receiver, a database other than PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .schemas import Task
from .serialization import json_text
from .status import TaskStatus

if TYPE_CHECKING:
    from .models import TaskRecord


class NewRow:
    """One validated, unwritten task row: values by field name, and JSON texts already encoded.

    Fields left out get their model defaults when written or made into a record.
    """

    __slots__ = ("_record", "fields", "json")

    def __init__(self, fields: dict[str, Any], json_texts: dict[str, str]) -> None:
        self.fields = fields
        self.json = json_texts
        self._record: TaskRecord | None = None

    @property
    def queue(self) -> str:
        return self.fields["queue"]

    def record(self) -> TaskRecord:
        """Return the row as a model instance (made once, on first use)."""
        if self._record is None:
            self._record = RowBuilder.get().build(**self.fields)
        return self._record

    def task(self) -> Task:
        """Return the snapshot ``add_task`` gives back: the row as just written."""
        fields = self.fields
        return Task(
            uuid=fields["uuid"],
            task_name=fields["task_name"],
            status=str(TaskStatus.NEW),
            priority=fields["priority"],
            args=fields["args"],
            kwargs=fields["kwargs"],
            created_at=fields["created_at"],
            updated_at=fields["updated_at"],
            retry=fields["retry"],
            queue=fields["queue"],
            parent_uuid=fields["parent_uuid"],
            tags=list(fields["tags"]),
            eta=fields["eta"],
        )


class RowBuilder:
    """Makes unsaved task rows the quick way: positional values in the model's field order.

    ``TaskRecord(**fields)`` walks every field and pops its keyword. Positional values
    take Django's fast path (the one ``from_db`` uses) and give the same instance;
    fields left out get their model defaults.
    """

    _instance: RowBuilder | None = None

    def __init__(self) -> None:
        from .models import TaskRecord

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
    trip on a fast server. Every value was built by ``DatabaseQueue.build`` (validated,
    JSON-normalised, aware datetimes), so JSON fields only need their text and the rest
    go to psycopg as they are.
    """

    _plans: dict[str, InsertPlan] = {}

    def __init__(self, connection: Any) -> None:
        from django.db.models import JSONField

        from .models import TaskRecord

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
        self.insert_and_notify_sql = (
            f"WITH ins AS ({self.insert_sql} RETURNING queue) "
            f"SELECT pg_notify(%s, q.queue) FROM (SELECT DISTINCT queue FROM ins) AS q"
        )
        self.copy_sql = f"COPY {table} ({columns}) FROM STDIN"

    @classmethod
    def for_connection(cls, connection: Any) -> InsertPlan:
        plan = cls._plans.get(connection.vendor)
        if plan is None:
            plan = cls._plans[connection.vendor] = cls(connection)
        return plan

    def values(self, row: NewRow) -> list[Any]:
        """Return the row's column values in the statements' order (JSON as text)."""
        fields, texts = row.fields, row.json
        values = []
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
