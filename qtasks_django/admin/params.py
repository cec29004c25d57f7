"""The admin's query parameters, read strictly: what the database or the date arithmetic
cannot take is refused with a 400, before any query runs, rather than failing with a 500.

A NUL character is the one thing PostgreSQL refuses in every text value (a filter, a
search, a lookup), and any staff user can put one in a URL (``?queue=%00``). Invalid UTF-8
(``%ff``) reaches Django as U+FFFD and is harmless; lone surrogates cannot be in a URL.
"""

from __future__ import annotations

from django.http import QueryDict

from ..conf import Bounds
from ..limits import INT_MAX

#: The parts of a date-hierarchy link; Django turns them into a ``datetime.date``, which
#: raises ``OverflowError`` (not the ``ValueError`` Django expects) for a huge year.
DATE_PARTS = {
    "year": Bounds(1, 9999, integer=True),
    "month": Bounds(1, 12, integer=True),
    "day": Bounds(1, 31, integer=True),
}
#: A sequence number of a progress item (``?after=`` of the live endpoint).
SEQUENCE = Bounds(0, INT_MAX, integer=True)
#: A row id of a ``BigAutoField`` (a schedule's, in ``?schedule=`` of the task list).
ROW_ID = Bounds(1, 2**63 - 1, integer=True)


def read_integer(text: str, bounds: Bounds) -> int | None:
    """Return ``text`` as an integer within ``bounds``, or None.

    Only ASCII digits count: ``"²".isdigit()`` is true, yet ``int("²")`` raises.
    """
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 20:
        return None
    value = int(text)
    return None if bounds.refuses(value) else value


def refused_parameter(
    params: QueryDict, *, date_field: str | None = None, row_ids: tuple[str, ...] = ()
) -> str | None:
    """Return why the query parameters of a list page are refused, or None if they are fine.

    ``row_ids`` name the parameters that hold a row id (a filter by a foreign key).
    """
    for key, values in params.lists():
        if any("\x00" in text for text in (key, *values)):
            return f"The parameter {key!r} holds a NUL character."
    for key in row_ids:
        if any(read_integer(text, ROW_ID) is None for text in params.getlist(key)):
            return f"{key} must be {ROW_ID.describe()}."
    if date_field:
        for part, bounds in DATE_PARTS.items():
            text = params.get(f"{date_field}__{part}")
            if text is not None and read_integer(text, bounds) is None:
                return f"{date_field}__{part} must be {bounds.describe()}."
    return None
