"""What the task table's columns can hold, so values are refused before the database would.

A value past these limits would make PostgreSQL raise ``DataError`` mid-transaction (the
caller's transaction is then aborted), or make a worker retry a write that can never
succeed. ``models.py`` declares its columns with these numbers, and the declaration and
enqueue checks refuse what does not fit with a ``QTasksError`` that names the limit.
"""

from __future__ import annotations

from typing import Any

TASK_NAME_MAX = 255  # TaskRecord.task_name, RegisteredTask.name
QUEUE_NAME_MAX = 100  # TaskRecord.queue, RegisteredTask.queue
FLOW_KEY_MAX = 255  # TaskRecord.unique_key, concurrency_key, rate_key

# An IntegerField is a 32-bit signed integer in PostgreSQL (priority, retry).
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1

# The longest duration a task setting may name (max_time, a countdown is checked by what a
# datetime holds): ten years, far below where timedelta, time.sleep and thread timeouts
# overflow, so a typo of a few extra zeros is refused instead of crashing a worker.
DURATION_MAX = 10 * 365 * 24 * 3600


def is_int(value: Any) -> bool:
    """Whether ``value`` is an int and not a bool (``True`` is an int to Python, not to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def int_in_range(value: Any, low: int = INT_MIN, high: int = INT_MAX) -> bool:
    """Whether ``value`` is an int (not a bool) that an integer column holds."""
    return is_int(value) and low <= value <= high


def unstorable_text(text: str) -> str | None:
    """Say why ``text`` cannot be stored in a text column, or ``None`` when it can.

    PostgreSQL text cannot hold NUL, and a lone surrogate (``"\\ud800"``, left by
    ``surrogateescape`` decoding) has no UTF-8 encoding at all.
    """
    if "\x00" in text:
        return "holds a NUL character (\\x00), which PostgreSQL text cannot store"
    if not _encodes(text):
        return "holds a lone surrogate (such as \\ud800), which has no UTF-8 encoding"
    return None


def _encodes(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def queue_name_problem(queue: Any) -> str | None:
    """Say what is wrong with a queue name, or ``None`` when a queue column holds it."""
    if not isinstance(queue, str) or queue == "":
        return f"queue must be a non-empty string, got {queue!r}"
    if len(queue) > QUEUE_NAME_MAX:
        return f"queue names have at most {QUEUE_NAME_MAX} characters, got {len(queue)}"
    problem = unstorable_text(queue)
    return f"the queue name {problem}" if problem else None
