"""Task rows read back from an ``UPDATE ... RETURNING``: the columns to ask for, and the records.

The claims write a lease and read the rows in one statement, through psycopg's own
cursor (prepared, bound server-side); this turns its tuples into ``TaskRecord``s the way
Django's ``from_db`` would.
"""

from __future__ import annotations

from typing import Any, cast

from ..models import TaskRecord


def returning_columns(connection: Any) -> str:
    """Every column of the task table, in field order, quoted for ``RETURNING``."""
    quote = connection.ops.quote_name
    # cast: a concrete field always has a column (Django derives ``concrete`` from it);
    # the stubs type ``column`` for every field, so they allow None.
    return ", ".join(quote(cast(str, f.column)) for f in TaskRecord._meta.concrete_fields)


def records(connection: Any, using: str, rows: list[tuple[Any, ...]]) -> list[TaskRecord]:
    """The ``TaskRecord``s of rows read with ``returning_columns``."""
    fields = list(TaskRecord._meta.concrete_fields)
    converters = [getattr(f, "from_db_value", None) for f in fields]
    names = [f.attname for f in fields]
    return [
        TaskRecord.from_db(
            using,
            names,
            [
                value if convert is None else convert(value, None, connection)
                for value, convert in zip(row, converters, strict=False)
            ],
        )
        for row in rows
    ]
