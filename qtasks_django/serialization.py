"""JSON rules for arguments and results, and task ids from outside (pure functions, no I/O)."""

from __future__ import annotations

import json
import math
import uuid as uuid_lib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .limits import unstorable_text

_SCALARS = (str, int, float, bool, type(None))

# Deeper nesting is refused: the JSON encoder and decoder recurse, and PostgreSQL's jsonb
# refuses input nested past its own stack limit, so an arbitrarily deep value would fail
# later and less clearly (RecursionError, or a DataError that aborts the transaction).
MAX_DEPTH = 100
# Python refuses to turn an int of more than 4300 digits into text (sys.int_info).
_MAX_INT_BITS = 14_000


def find_non_json(value: Any, path: str = "") -> str | None:
    """Return a description of the first value that cannot be stored exactly, or ``None``.

    Stricter than ``json.dumps``: non-string dict keys (which json would silently
    turn into strings), NaN/Infinity (not valid JSON), strings PostgreSQL cannot store
    (NUL, lone surrogates), circular values and nesting deeper than ``MAX_DEPTH`` are
    rejected too, so what a task receives is exactly what was enqueued (tuples become
    lists). The description starts with where the value is (``args[0]['key']``).
    """
    return _find(value, path, set())


def _find(value: Any, path: str, containers: set[int]) -> str | None:
    where = _where(path)
    if isinstance(value, str):
        problem = unstorable_text(value)
        return f"{where}: the string {problem}" if problem else None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where}: {value!r} is not valid JSON"
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        return f"{where}: an integer of {value.bit_length()} bits is too large to store"
    if isinstance(value, _SCALARS):
        return None
    if not isinstance(value, list | tuple | dict):
        return f"{where}: {type(value).__name__} {_short_repr(value)} is not JSON-serialisable"
    if id(value) in containers:
        return f"{where}: the value contains itself (a circular reference)"
    if len(containers) >= MAX_DEPTH:
        return f"{where}: nested deeper than {MAX_DEPTH} levels"
    containers.add(id(value))
    try:
        return _find_in_container(value, path, containers)
    finally:
        containers.discard(id(value))


def _where(path: str, limit: int = 100) -> str:
    # A path 100 levels deep would bury the message: keep its start and its end.
    if len(path) <= limit:
        return path or "value"
    return f"{path[: limit // 2]}...{path[-limit // 2 :]}"


def _find_in_container(
    value: list[Any] | tuple[Any, ...] | dict[Any, Any], path: str, containers: set[int]
) -> str | None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{_where(path)}: key {_short_repr(key)} is not a string"
            problem = unstorable_text(key)
            if problem:
                return f"{_where(path)}: the key {_short_repr(key)} {problem}"
            problem = _find(item, f"{path}[{key!r}]", containers)
            if problem:
                return problem
        return None
    for index, item in enumerate(value):
        problem = _find(item, f"{path}[{index}]", containers)
        if problem:
            return problem
    return None


def storable_text(text: str) -> str:
    """Return ``text`` as a text column can hold it: NUL and lone surrogates escaped.

    For what the worker records (tracebacks, log lines, cancel reasons): keep as much of
    the original as can be stored, rather than losing the whole record to a DataError.
    """
    if unstorable_text(text) is None:
        return text
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True, slots=True)
class Encoded:
    """A JSON value as it is stored (tuples become lists), its text and its size."""

    value: Any
    text: str  # compact JSON, what the database receives
    size: int  # bytes of the text as UTF-8


def dumps(value: Any) -> str:
    """Return ``value`` as compact JSON that PostgreSQL's jsonb gives back exactly.

    jsonb keeps numbers as ``numeric``: ``1e+16`` (how Python writes a float from 1e16
    up) comes back as ``10000000000000000``, an int. Such floats are written in full
    with a ``.0`` (``10000000000000000.0``), which jsonb keeps as written, so a float
    stays a float.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if "e+" not in text:  # the usual case: no float from 1e16 up (a string may say "e+" too)
        return text
    numbers: list[str] = []
    marked = json.dumps(_mark_big_floats(value, numbers), separators=(",", ":"), ensure_ascii=False)
    for index, number in enumerate(numbers):
        marked = marked.replace(f'"{_marker(index)}"', number, 1)
    return marked


def _mark_big_floats(value: Any, numbers: list[str]) -> Any:
    # Each float written with an exponent is swapped for a marker string, later replaced by
    # its digits. The marker holds NUL, which no stored string can (find_non_json).
    if isinstance(value, float) and "e+" in repr(value):
        numbers.append(format(Decimal(repr(value)), "f") + ".0")
        return _MARKER_CHAR + str(len(numbers) - 1) + _MARKER_CHAR
    if isinstance(value, list | tuple):
        return [_mark_big_floats(item, numbers) for item in value]
    if isinstance(value, dict):
        return {key: _mark_big_floats(item, numbers) for key, item in value.items()}
    return value


_MARKER_CHAR = "\x00"


def _marker(index: int) -> str:
    return json.dumps(f"{_MARKER_CHAR}{index}{_MARKER_CHAR}", ensure_ascii=False)[1:-1]


class ExactJSONEncoder(json.JSONEncoder):
    """The encoder of the task table's JSON columns: ``dumps`` for the ORM's writes too."""

    def encode(self, o: Any) -> str:
        return dumps(o)


def encode(value: Any) -> Encoded:
    """Return ``value`` encoded once: enqueue sends the text and keeps the value."""
    text = dumps(value)
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
    return None if value is None else dumps(value)


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
