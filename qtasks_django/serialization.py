"""JSON rules for arguments and results, and task ids from outside (pure functions, no I/O)."""

from __future__ import annotations

import json
import math
import uuid as uuid_lib
from dataclasses import dataclass
from typing import Any

_SCALARS = (str, int, float, bool, type(None))


def find_non_json(value: Any, path: str = "") -> str | None:
    """Return a description of the first value that is not plain JSON, or ``None``.

    Stricter than ``json.dumps``: non-string dict keys (which json would silently
    turn into strings) and NaN/Infinity (not valid JSON) are rejected too, so what
    a task receives is exactly what was enqueued (tuples become lists).
    """
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path or 'value'}: {value!r} is not valid JSON"
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = find_non_json(item, f"{path}[{index}]")
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path or 'value'}: key {key!r} is not a string"
            problem = find_non_json(item, f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    return f"{path or 'value'}: {type(value).__name__} {_short_repr(value)} is not JSON-serialisable"


@dataclass(frozen=True, slots=True)
class Encoded:
    """A JSON value as it is stored (tuples become lists), its text and its size."""

    value: Any
    text: str  # compact JSON, what the database receives
    size: int  # bytes of the text as UTF-8


def encode(value: Any) -> Encoded:
    """Return ``value`` encoded once: enqueue sends the text and keeps the value."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    size = len(text) if text.isascii() else len(text.encode())
    return Encoded(_stored_copy(value, text), text, size)


def _stored_copy(value: Any, text: str) -> Any:
    # Decoding the text gives a copy with tuples turned into lists and subclasses (an
    # IntEnum, a str enum) turned into plain values. A flat list or dict of plain
    # scalars (most calls' arguments) is copied as it is, for a few microseconds less
    # per enqueued task.
    if isinstance(value, list | tuple) and all(type(item) in _SCALARS for item in value):
        return list(value)
    if isinstance(value, dict) and all(
        type(key) is str and type(item) in _SCALARS for key, item in value.items()
    ):
        return dict(value)
    return json.loads(text)


def json_text(value: Any) -> str | None:
    """Return ``value`` as compact JSON text for a JSON column; None (SQL NULL) stays None."""
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encoded_size(*values: Any) -> int:
    """Return the size in bytes of ``values`` encoded as compact JSON."""
    return sum(encode(v).size for v in values)


def to_json(value: Any) -> Any:
    """Return ``value`` as stored (tuples become lists)."""
    return encode(value).value


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_uuid(value: Any) -> uuid_lib.UUID | None:
    """Return ``value`` as a UUID, or ``None`` when it is not one (a bad id finds no task)."""
    if isinstance(value, uuid_lib.UUID):
        return value
    try:
        return uuid_lib.UUID(str(value))
    except ValueError:
        return None
