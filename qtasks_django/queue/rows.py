"""A task row on its way into the table: validated values and their JSON texts.

Enqueue is the callers' hot path, and on a bulk enqueue Python's time per row is the
limit, not the server's. A ``NewRow`` carries what the enqueue validated, with the JSON
text it encoded while validating; ``inserts.InsertPlan`` turns it into the values of the
INSERT or COPY. A ``TaskRecord`` is made only when something needs one.

This module imports no model: the task floor builds rows before Django's apps are ready
to be asked for one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import TaskRecord


class NewRow:
    """One validated, unwritten task row: values by field name, and JSON texts already encoded.

    Fields left out get their model defaults when written or made into a record.
    """

    __slots__ = ("existing", "fields", "json", "record")

    def __init__(self, fields: dict[str, Any], json_texts: dict[str, str]) -> None:
        self.fields = fields
        self.json = json_texts
        self.record: TaskRecord | None = None
        """The row as a model instance, once the queue made one (``inserts.as_record``)."""
        self.existing: TaskRecord | None = None
        """The task already holding this row's unique key: the row was not written."""

    @property
    def queue(self) -> str:
        return str(self.fields["queue"])

    @property
    def uuid(self) -> Any:
        return self.fields["uuid"]

    @property
    def unique_key(self) -> str | None:
        return self.fields.get("unique_key")
