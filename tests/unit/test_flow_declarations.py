"""Flow-control declarations and the keys of one call: what ``@task(...)`` and ``add_task``
refuse, each with a message naming the mistake, and what they write. No database: every
refusal comes before the insert, and ``build_row`` is the enqueue's row, unwritten.

Tasks are declared on apps of their own (``QueueTasks(...).task``), never the registry.
"""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from qtasks_django import QueueTasks
from qtasks_django.exceptions import InvalidTaskArguments, InvalidTaskDefinition
from qtasks_django.limits import DURATION_MAX, FLOW_KEY_MAX, INT_MAX
from qtasks_django.tasks.enqueue import Call, build_row
from qtasks_django.tasks.flow import Rate

FORMAT = "rate_limit must look like '100/m'"
RANGE = "must allow 1 to 2147483647 starts per period of 1 second to 3650 days"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
WORDS = {"sec": 1, "second": 1, "min": 60, "minute": 60, "hour": 3600, "day": 86400}
# The grammar the docs promise, written out independently of the parser.
WELL_FORMED = re.compile(
    r"\s*([0-9]+)\s*/\s*([0-9]*)\s*(s|m|h|d|secs?|seconds?|mins?|minutes?|hours?|days?)\s*",
    re.ASCII | re.IGNORECASE,
)


def send(account_id, amount=0, *, note=None):
    return account_id


def declare(func=send, **options: Any) -> Any:
    """A task ``t`` on an app of its own, declared with the flow ``options``."""
    return QueueTasks("flow-declarations").task(name="t", **options)(func)


def row(task: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The flow columns ``task.add_task(*args, **kwargs)`` would write."""
    unique = {k: kwargs.pop(k) for k in ("unique_key", "unique_for") if k in kwargs}
    call = Call(task.task_name, args, kwargs, **unique)
    fields = build_row(task.app, call).fields
    return {k: v for k, v in fields.items() if k.startswith(("unique", "concurrency", "rate"))}


def refused_declaration(**options: Any) -> str:
    with pytest.raises(InvalidTaskDefinition) as refused:
        declare(**options)
    message = str(refused.value)
    assert message.startswith("Task 't': ")
    return message


# Rate.parse


@pytest.mark.parametrize(
    ("text", "count", "period", "shown"),
    [
        ("100/m", 100, 60, "100/m"),
        ("5/s", 5, 1, "5/s"),
        ("1000/h", 1000, 3600, "1000/h"),
        ("3/d", 3, 86400, "3/d"),
        ("10/5m", 10, 300, "10/5m"),
        ("10/mins", 10, 60, "10/m"),
        (" 2 / 90 Seconds ", 2, 90, "2/90s"),
        ("1/1HOUR", 1, 3600, "1/h"),
        ("7/120s", 7, 120, "7/2m"),
        ("1/3650d", 1, DURATION_MAX, "1/3650d"),
        (f"{INT_MAX}/s", INT_MAX, 1, f"{INT_MAX}/s"),
    ],
)
def test_a_rate_reads_a_count_per_period(text, count, period, shown) -> None:
    rate = Rate.parse(text)
    assert (rate.count, rate.period, str(rate)) == (count, period, shown)


@pytest.mark.parametrize(
    "text",
    [
        "10/ms",  # milliseconds to most readers, not minutes
        "10/ss",
        "10/hs",
        "٣/s",  # a digit of another script
        "1.5/s",
        "10",
        "/s",
        "10/",
        "10/5",
        "ten/m",
        "10/fortnight",
        "-1/s",
        "10 per minute",
        "1" * 5000 + "/s",  # past int()'s own digit limit
        "",
    ],
)
def test_anything_else_is_refused_naming_the_format(text) -> None:
    with pytest.raises(ValueError, match=re.escape(FORMAT)):
        Rate.parse(text)


@pytest.mark.parametrize("text", ["0/s", "10/0m", "10/3651d", f"{INT_MAX + 1}/s", "1" * 30 + "/s"])
def test_a_count_or_period_out_of_range_is_refused_naming_the_range(text) -> None:
    with pytest.raises(ValueError, match=re.escape(RANGE)):
        Rate.parse(text)


@pytest.mark.parametrize("value", [10, None, b"10/s", ["10/s"]])
def test_a_rate_that_is_not_text_is_refused(value) -> None:
    with pytest.raises(ValueError, match=re.escape(FORMAT)):
        Rate.parse(value)


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(1, INT_MAX),
    multiple=st.one_of(st.none(), st.integers(1, 1000)),
    unit=st.sampled_from([*UNITS, *WORDS, *(f"{word}s" for word in WORDS)]),
    spaced=st.booleans(),
    upper=st.booleans(),
)
def test_every_well_formed_rate_is_read_and_shown_back(count, multiple, unit, spaced, upper) -> None:
    gap = " " if spaced else ""
    text = f"{count}{gap}/{gap}{'' if multiple is None else multiple}{gap}{unit}"
    rate = Rate.parse(text.upper() if upper else text)
    assert rate == Rate(count, float((multiple or 1) * {**UNITS, **WORDS}[unit.rstrip("s") or "s"]))
    assert Rate.parse(str(rate)) == rate  # what the admin shows is a rate too


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=20), st.from_regex(r"\A ?[0-9٣]{0,3} ?/? ?[0-9]{0,2} ?[a-zA-Z]{0,8} ?\Z")))
def test_a_text_is_a_rate_exactly_when_it_is_well_formed(text) -> None:
    match = WELL_FORMED.fullmatch(text)
    try:
        rate = Rate.parse(text)
    except ValueError as exc:
        assert (FORMAT in str(exc)) if match is None else (RANGE in str(exc))
    else:
        assert match is not None
        assert rate.count == int(match.group(1)) and 0 < rate.period <= DURATION_MAX


# Declarations


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=INT_MAX + 1),
        st.floats(),
        st.booleans(),
        st.text(max_size=3),
    )
)
def test_a_concurrency_limit_is_a_positive_int(limit) -> None:
    assert "concurrency_limit must be an int of 1 or more" in refused_declaration(concurrency_limit=limit)


def test_a_positive_concurrency_limit_defaults_its_key_to_the_task_name() -> None:
    assert row(declare(concurrency_limit=3), 1) == {"concurrency_key": "t", "concurrency_limit": 3}


@pytest.mark.parametrize("option", ["concurrency_key", "rate_key"])
def test_a_key_template_names_only_arguments_the_task_takes(option) -> None:
    limit = {"concurrency_key": {"concurrency_limit": 1}, "rate_key": {"rate_limit": "1/s"}}[option]
    message = refused_declaration(**{option: "acct:{acount_id}"}, **limit)
    assert (
        f"{option} 'acct:{{acount_id}}' names the argument 'acount_id', which the task does not take "
        "(its parameters: account_id, amount, note)"
    ) in message


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{0}", "must name arguments ({account_id}), not positions"),
        ("{}", "must name arguments"),
        ("acct:{account_id", "is not a valid template"),
        ("", "must be a non-empty string template or a callable"),
        (5, "must be a non-empty string template or a callable"),
    ],
)
def test_a_malformed_key_is_refused(template, problem) -> None:
    assert problem in refused_declaration(concurrency_key=template, concurrency_limit=1)


def test_a_key_template_renders_the_call_however_it_is_passed() -> None:
    task = declare(concurrency_key="acct:{account_id}/{amount}", concurrency_limit=1)
    assert row(task, 7)["concurrency_key"] == "acct:7/0"
    assert row(task, account_id=7, amount=0)["concurrency_key"] == "acct:7/0"


def test_a_task_with_var_keywords_takes_any_name() -> None:
    def anything(**kwargs):
        return kwargs

    task = declare(anything, rate_limit="1/s", rate_key="r:{region}")
    assert row(task, region="eu") == {"rate_key": "r:eu", "rate_limit": 1, "rate_period": 1.0}


def test_a_callable_key_is_called_with_the_call() -> None:
    task = declare(concurrency_key=lambda account_id, **_: f"acct-{account_id}", concurrency_limit=2)
    assert row(task, 7, note="x") == {"concurrency_key": "acct-7", "concurrency_limit": 2}


def test_a_callable_key_that_fails_or_gives_no_text_refuses_the_enqueue() -> None:
    failing = declare(concurrency_key=lambda account_id, **_: 1 / 0, concurrency_limit=1)
    with pytest.raises(InvalidTaskArguments, match="could not be made: ZeroDivisionError"):
        failing.add_task(1)
    numeric = declare(concurrency_key=lambda account_id, **_: account_id, concurrency_limit=1)
    with pytest.raises(InvalidTaskArguments, match="key must be a non-empty string, got 5"):
        numeric.add_task(5)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"concurrency_key": "k"}, "concurrency_key needs a concurrency_limit"),
        ({"rate_key": "k"}, "rate_key needs a rate_limit"),
        ({"rate_limit": "10/ms"}, FORMAT),
        ({"unique": 1}, "unique must be a bool, got 1"),
    ],
)
def test_other_flow_mistakes_are_refused(options, problem) -> None:
    assert problem in refused_declaration(**options)


@pytest.mark.parametrize("unique_while", ["", 0, False, "Active", "running", ["waiting"]])
def test_unique_while_is_waiting_or_active(unique_while) -> None:
    message = refused_declaration(unique=True, unique_while=unique_while)
    assert f"unique_while must be 'waiting' or 'active', got {unique_while!r}" in message


@pytest.mark.parametrize(
    ("unique_while", "while_running"), [(None, True), ("active", True), ("waiting", False)]
)
def test_unique_while_says_whether_a_running_task_holds_its_key(unique_while, while_running) -> None:
    task = declare(unique=True, unique_while=unique_while)
    assert row(task, 1)["unique_while_running"] is while_running


BAD_DURATIONS = [0, -1, math.nan, math.inf, DURATION_MAX + 1, True, "60", timedelta(0), timedelta(days=-1)]


@pytest.mark.parametrize("unique_for", BAD_DURATIONS)
def test_unique_for_is_a_positive_duration_when_declared_and_when_called(unique_for) -> None:
    assert "unique_for must be a number of seconds in (0, 315360000]" in refused_declaration(
        unique=True, unique_for=unique_for
    )
    with pytest.raises(InvalidTaskArguments, match=re.escape("unique_for must be a number of seconds")):
        declare().add_task(1, unique_key="k", unique_for=unique_for)


@pytest.mark.parametrize("unique_for", [1, 0.5, timedelta(hours=1), DURATION_MAX])
def test_unique_for_holds_the_key_that_long_declared_or_called(unique_for) -> None:
    lasts = unique_for if isinstance(unique_for, timedelta) else timedelta(seconds=unique_for)
    for task, extra in [
        (declare(unique=True, unique_for=unique_for), {}),
        (declare(), {"unique_for": unique_for}),
    ]:
        before = timezone.now()
        until = row(task, 1, unique_key="k", **extra)["unique_until"]
        assert before + lasts <= until <= timezone.now() + lasts


def test_unique_for_on_a_call_needs_a_unique_key() -> None:
    with pytest.raises(InvalidTaskArguments, match="unique_for needs a unique_key"):
        declare().add_task(1, unique_for=60)


# The unique key of one call

# What an enqueue takes: JSON values whose text PostgreSQL stores (no NUL, no lone surrogate).
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(account=JSON, amount=JSON)
def test_a_call_has_one_unique_key_however_it_is_passed(account, amount) -> None:
    task = declare(unique=True)
    passings = [
        ((account, amount), {}),
        ((account,), {"amount": amount}),
        ((), {"amount": amount, "account_id": account}),
    ]
    if amount == 0 and type(amount) is int:
        passings += [((account,), {}), ((), {"account_id": account, "note": None})]
    keys = {row(task, *args, **kwargs)["unique_key"] for args, kwargs in passings}
    assert len(keys) == 1
    (key,) = keys
    assert key.startswith("t:") and len(key) <= FLOW_KEY_MAX


@settings(max_examples=100, deadline=None)
@given(first=JSON, second=JSON)
def test_different_calls_have_different_unique_keys(first, second) -> None:
    def canonical(value: Any) -> str:
        return json.dumps(value, sort_keys=True)

    task = declare(unique=True)
    same = canonical(first) == canonical(second)
    assert (row(task, first)["unique_key"] == row(task, second)["unique_key"]) is same


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("x" * (FLOW_KEY_MAX - 1), "has 256 characters, above the limit of 255"),  # with "t:" before it
        ("x" * 300, "unique_key has 300 characters, above the limit of 255"),
        ("a\x00b", "holds a NUL character"),
        ("\ud800", "holds a lone surrogate"),
        ("", "unique_key must be a non-empty string"),
        (5, "unique_key must be a non-empty string, got 5"),
    ],
)
def test_a_call_unique_key_no_column_holds_is_refused_at_enqueue(key, problem) -> None:
    with pytest.raises(InvalidTaskArguments, match=re.escape(problem)):
        declare().add_task(1, unique_key=key)


def test_a_unique_key_that_just_fits_is_written_with_the_task_name() -> None:
    key = "x" * (FLOW_KEY_MAX - 2)
    assert row(declare(), 1, unique_key=key)["unique_key"] == f"t:{key}"


@pytest.mark.parametrize(
    ("account", "problem"), [("x" * 252, "has 256 characters"), ("a\x00", "holds a NUL character")]
)
def test_a_rendered_key_no_column_holds_is_refused_at_enqueue(account, problem) -> None:
    task = declare(concurrency_key="acct{account_id}", concurrency_limit=1)
    with pytest.raises(InvalidTaskArguments, match=re.escape(problem)):
        task.add_task(account)
