"""Checks run before a task row is written (pure functions, no I/O)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

from ..exceptions import InvalidTaskArguments, PayloadTooLarge, TaskNotRegistered
from ..limits import INT_MAX, INT_MIN, int_in_range
from ..serialization import Encoded, encode, find_non_json
from .definition import TaskExecSchema


def resolve_schema(tasks: Mapping[str, TaskExecSchema], name: str) -> TaskExecSchema:
    """Return the schema registered as ``name`` or raise ``TaskNotRegistered``."""
    if not isinstance(name, str):
        raise TaskNotRegistered(f"Task name must be a string, got {type(name).__name__}")
    try:
        return tasks[name]
    except KeyError:
        known = ", ".join(sorted(tasks)) or "none"
        raise TaskNotRegistered(f"No task named {name!r} is registered (known: {known})") from None


def validate_call(
    schema: TaskExecSchema, args: tuple[Any, ...], kwargs: dict[str, Any], *, max_bytes: int
) -> tuple[Encoded, Encoded]:
    """Return ``args``/``kwargs`` encoded as they will be stored; raise if they cannot be given to ``schema.func``."""
    check_binding(schema, args, kwargs)
    for label, value in (("args", args), ("kwargs", kwargs)):
        problem = find_non_json(value, label)
        if problem:
            raise InvalidTaskArguments(f"Task {schema.name!r}: {problem}; only JSON values can be enqueued")
    stored_args, stored_kwargs = encode(list(args)), encode(kwargs)
    size = stored_args.size + stored_kwargs.size
    if size > max_bytes:
        raise PayloadTooLarge(
            f"Task {schema.name!r}: arguments take {size} bytes as JSON, above the cap of {max_bytes} "
            "(QTASKS['MAX_PAYLOAD_BYTES']); store large data elsewhere and pass a reference"
        )
    return stored_args, stored_kwargs


def check_binding(schema: TaskExecSchema, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Raise ``InvalidTaskArguments`` unless the call binds to the function's signature."""
    signature = call_signature(schema)
    if signature is None:
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidTaskArguments(f"Task {schema.name!r}{signature}: {exc}") from None


def call_signature(schema: TaskExecSchema) -> inspect.Signature | None:
    """Return the signature a caller must match (without the echo or context parameter)."""
    injected = schema.echo or schema.takes_context
    try:
        return _call_signature(schema.func, injected)
    except TypeError:  # an unhashable callable object: compute it uncached
        return _call_signature.__wrapped__(schema.func, injected)


@functools.lru_cache(maxsize=1024)
def _call_signature(func: Any, injected: bool) -> inspect.Signature | None:
    # Computed once per task function: enqueue is a hot path.
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without introspectable signatures
        return None
    if injected:  # the first parameter is the runtime's to give
        params = list(signature.parameters.values())
        if params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
            signature = signature.replace(parameters=params[1:])
    return signature


def validate_priority(priority: Any) -> int:
    """Return ``priority`` if the priority column holds it; raise ``InvalidTaskArguments``."""
    if not int_in_range(priority):
        raise InvalidTaskArguments(f"priority must be an int from {INT_MIN} to {INT_MAX}, got {priority!r}")
    return int(priority)
