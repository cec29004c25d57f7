"""Flow control declared on a task: unique tasks, concurrency limits and rate limits.

``FlowControl`` is built once, when ``@task`` runs, and refuses bad input there (a
malformed rate, a non-positive limit, a key template naming an argument the task does
not take). At enqueue it turns one call's arguments into the row's flow columns; the
database enforces them (the unique index, the claim's gates: docs/flow-control.md).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from ..exceptions import InvalidTaskArguments, InvalidTaskDefinition
from ..limits import DURATION_MAX, FLOW_KEY_MAX, INT_MAX, int_in_range, unstorable_text

UniqueWhile = Literal["waiting", "active"]
UNIQUE_WHILE: tuple[UniqueWhile, ...] = ("waiting", "active")

#: Seconds per unit: a letter, or a word (``sec``, ``minute``, ``hours``...) naming one.
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WORDS = {"sec": "s", "second": "s", "min": "m", "minute": "m", "hour": "h", "day": "d"}
# ASCII digits only (``\d`` would take any script's), and a few of them: int() of 4300
# digits raises a ValueError of its own, and 30 are far past every bound already.
_RATE = re.compile(r"^\s*([0-9]{1,30})\s*/\s*([0-9]{0,30})\s*([a-z]+)\s*$", re.ASCII)


@dataclass(frozen=True)
class Rate:
    """At most ``count`` starts in any ``period`` seconds."""

    count: int
    period: float

    @classmethod
    def parse(cls, text: Any) -> Rate:
        """Read ``"100/m"``, ``"5/s"``, ``"1000/h"``, ``"10/5m"`` (10 per 5 minutes); raise ``ValueError``.

        A unit is ``s``, ``m``, ``h`` or ``d``, or a word for one (``sec``, ``second``,
        ``min``, ``minute``, ``hour``, ``day``, each also with an ``s``). ``"10/ms"`` is
        refused, not read as 10 a minute: it would mean milliseconds to most readers.
        """
        match = _RATE.match(text.lower()) if isinstance(text, str) else None
        unit = _unit(match.group(3)) if match else None
        if match is None or unit is None:
            raise ValueError(
                f"rate_limit must look like '100/m' (a count per s, m, h or d; '10/5m' is 10 per 5 minutes), "
                f"got {text!r}"
            )
        count, period = int(match.group(1)), int(match.group(2) or 1) * unit
        if not 0 < count <= INT_MAX or not 0 < period <= DURATION_MAX:
            raise ValueError(
                f"rate_limit {text!r} must allow 1 to {INT_MAX} starts per period of 1 second to "
                f"{DURATION_MAX // 86400} days"
            )
        return cls(count, float(period))

    def __str__(self) -> str:
        """The shortest text ``parse`` reads back as this rate (``"10/5m"``, ``"3/s"``)."""
        if not float(self.period).is_integer():
            return f"{self.count}/{self.period}s"
        seconds = int(self.period)
        name, size = next((n, size) for n, size in reversed(_PERIODS.items()) if seconds % size == 0)
        multiple = seconds // size
        return f"{self.count}/{'' if multiple == 1 else multiple}{name}"


def _unit(name: str) -> int | None:
    if name in _PERIODS:
        return _PERIODS[name]
    word = _WORDS.get(name) or (_WORDS.get(name[:-1]) if name.endswith("s") else None)
    return None if word is None else _PERIODS[word]


KeySource = str | Callable[..., Any]


@dataclass(frozen=True)
class FlowKey:
    """A key computed from a call's arguments: a template (``"acct:{account_id}"``) or a callable."""

    source: KeySource

    @classmethod
    def declare(cls, source: Any, signature: inspect.Signature | None, option: str) -> FlowKey:
        """Check ``source`` against the task's parameters; raise ``ValueError`` naming the problem."""
        if callable(source):
            return cls(source)
        if not isinstance(source, str) or not source:
            raise ValueError(f"{option} must be a non-empty string template or a callable, got {source!r}")
        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(source) if field is not None]
        except ValueError as exc:
            raise ValueError(f"{option} {source!r} is not a valid template: {exc}") from None
        for field in fields:
            name = re.split(r"[.\[]", field, maxsplit=1)[0]
            if not name or name.isdigit():
                raise ValueError(f"{option} {source!r} must name arguments ({{account_id}}), not positions")
            if signature is not None and not _takes(signature, name):
                raise ValueError(
                    f"{option} {source!r} names the argument {name!r}, which the task does not take "
                    f"(its parameters: {', '.join(signature.parameters) or 'none'})"
                )
        return cls(source)

    def render(
        self, bound: inspect.BoundArguments | None, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> str:
        """Return the key for one call; raise ``InvalidTaskArguments`` if it cannot be made or stored."""
        try:
            if callable(self.source):
                key = self.source(*args, **kwargs)
            else:
                key = self.source.format_map(_named(bound) if bound is not None else kwargs)
        except Exception as exc:  # a user's callable or template: name what went wrong
            raise InvalidTaskArguments(f"the key {self.source!r} could not be made: {exc!r}") from None
        return checked_key(key, "key")

    def describe(self) -> str:
        return (
            self.source if isinstance(self.source, str) else getattr(self.source, "__qualname__", "callable")
        )


@dataclass(frozen=True)
class FlowControl:
    """A task's flow-control declaration (all optional): what the enqueue writes into its row."""

    unique: bool = False
    unique_while: UniqueWhile = "active"
    unique_for: float | None = None
    concurrency_limit: int | None = None
    concurrency_key: FlowKey | None = None
    rate_limit: Rate | None = None
    rate_key: FlowKey | None = None

    @classmethod
    def declare(cls, signature: inspect.Signature | None, **options: Any) -> FlowControl:
        """Validate the decorator's flow options; raise ``ValueError`` with the reason."""
        unique = options.get("unique", False)
        if not isinstance(unique, bool):
            raise ValueError(f"unique must be a bool, got {unique!r}")
        unique_while = options.get("unique_while")
        unique_while = "active" if unique_while is None else unique_while  # "" or 0 is a mistake
        if unique_while not in UNIQUE_WHILE:
            raise ValueError(f"unique_while must be 'waiting' or 'active', got {unique_while!r}")
        unique_for = check_unique_for(options.get("unique_for"))
        limit = options.get("concurrency_limit")
        if limit is not None and not int_in_range(limit, 1):
            raise ValueError(f"concurrency_limit must be an int of 1 or more, got {limit!r}")
        ckey, rkey = options.get("concurrency_key"), options.get("rate_key")
        if ckey is not None and limit is None:
            raise ValueError("concurrency_key needs a concurrency_limit")
        rate = options.get("rate_limit")
        if rkey is not None and rate is None:
            raise ValueError("rate_key needs a rate_limit")
        return cls(
            unique=unique,
            unique_while=unique_while,
            unique_for=unique_for,
            concurrency_limit=limit,
            concurrency_key=None if ckey is None else FlowKey.declare(ckey, signature, "concurrency_key"),
            rate_limit=None if rate is None else Rate.parse(rate),
            rate_key=None if rkey is None else FlowKey.declare(rkey, signature, "rate_key"),
        )

    @property
    def limited(self) -> bool:
        return self.concurrency_limit is not None or self.rate_limit is not None

    def fields(
        self,
        task_name: str,
        signature: inspect.Signature | None,
        call: tuple[tuple[Any, ...], dict[str, Any]],
        now: datetime,
        *,
        unique_key: Any = None,
        unique_for: Any = None,
    ) -> dict[str, Any]:
        """Return the flow columns of one call's row (empty when the task has no flow control)."""
        args, kwargs = call
        if unique_key is None and unique_for is not None and not self.unique:
            raise InvalidTaskArguments("unique_for needs a unique_key (or a task declared unique=True)")
        if not (self.unique or unique_key is not None or self.limited):
            return {}
        bound = _bind(signature, args, kwargs)
        fields: dict[str, Any] = {}
        if unique_key is not None or self.unique:
            key = (
                _arguments_key(bound, args, kwargs)
                if unique_key is None
                else checked_key(unique_key, "unique_key")
            )
            lasts = (
                self.unique_for if unique_for is None else check_unique_for(unique_for, InvalidTaskArguments)
            )
            fields["unique_key"] = checked_key(
                f"{task_name}:{key}", "unique_key (with the task name before it)"
            )
            fields["unique_while_running"] = self.unique_while == "active"
            fields["unique_until"] = None if lasts is None else now + timedelta(seconds=lasts)
        if self.concurrency_limit is not None:
            fields["concurrency_key"] = (
                self.concurrency_key.render(bound, args, kwargs) if self.concurrency_key else task_name
            )
            fields["concurrency_limit"] = self.concurrency_limit
        if self.rate_limit is not None:
            fields["rate_key"] = self.rate_key.render(bound, args, kwargs) if self.rate_key else task_name
            fields["rate_limit"] = self.rate_limit.count
            fields["rate_period"] = self.rate_limit.period
        return fields

    def describe(self) -> dict[str, Any]:
        """The declaration as plain values (persisted with the registered task, shown in the admin)."""
        shown: dict[str, Any] = {}
        if self.unique:
            shown.update(unique=True, unique_while=self.unique_while)
        if self.unique_for is not None:
            shown["unique_for"] = self.unique_for
        if self.concurrency_limit is not None:
            shown["concurrency_limit"] = self.concurrency_limit
            shown["concurrency_key"] = self.concurrency_key.describe() if self.concurrency_key else None
        if self.rate_limit is not None:
            shown["rate_limit"] = str(self.rate_limit)
            shown["rate_key"] = self.rate_key.describe() if self.rate_key else None
        return shown


def check_unique_for(value: Any, error: type[Exception] = ValueError) -> float | None:
    """Return ``unique_for`` in seconds (``None``: while the task is waiting or running)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= DURATION_MAX:
        raise error(
            f"unique_for must be a number of seconds in (0, {DURATION_MAX}] or a timedelta, got {value!r}"
        )
    return float(value)


def checked_key(key: Any, label: str) -> str:
    """Return ``key`` if a key column holds it; raise ``InvalidTaskArguments`` naming the problem."""
    if not isinstance(key, str) or key == "":
        raise InvalidTaskArguments(f"{label} must be a non-empty string, got {key!r}")
    if len(key) > FLOW_KEY_MAX:
        raise InvalidTaskArguments(f"{label} has {len(key)} characters, above the limit of {FLOW_KEY_MAX}")
    problem = unstorable_text(key)
    if problem:
        raise InvalidTaskArguments(f"{label} {problem}")
    return key


def declare(label: str, signature: inspect.Signature | None, **options: Any) -> FlowControl:
    """``FlowControl.declare`` with a refusal that names the task."""
    try:
        return FlowControl.declare(signature, **options)
    except ValueError as exc:
        raise InvalidTaskDefinition(f"Task {label!r}: {exc}") from None


def _takes(signature: inspect.Signature, name: str) -> bool:
    params = signature.parameters
    if name in params and params[name].kind is not inspect.Parameter.VAR_POSITIONAL:
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _bind(signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if signature is None:
        return None
    bound = signature.bind(*args, **kwargs)  # the enqueue checked that it binds
    bound.apply_defaults()
    return bound


def _named(bound: inspect.BoundArguments) -> dict[str, Any]:
    """The call's arguments by name; those a ``**kwargs`` took are named too (``{region}``)."""
    named = dict(bound.arguments)
    for name, param in bound.signature.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            named = {**named.get(name, {}), **named}
    return named


def _arguments_key(
    bound: inspect.BoundArguments | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """A digest of the call's arguments, the same however they were passed (``f(1)`` is ``f(x=1)``)."""
    named = dict(bound.arguments) if bound is not None else {"args": list(args), "kwargs": kwargs}
    text = json.dumps(named, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]
