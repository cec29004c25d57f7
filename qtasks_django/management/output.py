"""What the qtasks commands print: aligned columns, one-line cells, JSON with ISO datetimes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The header, a rule of dashes, then the rows, each column as wide as its widest cell."""
    cells = [[one_line(value) for value in row] for row in [list(header), *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    lines = [
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def one_line(value: str) -> str:
    """``value`` with each newline or control character shown as ``?``: it would break the columns."""
    return "".join(char if char.isprintable() else "?" for char in value)


def iso(value: Any) -> str:
    """``json.dumps(default=iso)``: datetimes in ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
