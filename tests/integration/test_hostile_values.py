"""Arbitrary values at the door and out of tasks: stored exactly, or refused naming where.

At enqueue (single and bulk), any Python value either comes back from the database
exactly as a task will receive it (tuples as lists), or is refused with a
``QTasksError`` that names the argument, writes nothing and leaves the caller's
transaction usable. In the worker, whatever a task produces (its result, its
exception's message, its progress items, its log lines) ends that task with a readable
record, and every other task is still recorded.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qtasks_django import app
from qtasks_django.exceptions import InvalidTaskArguments, QTasksError
from qtasks_django.limits import unstorable_text
from qtasks_django.models import TaskLog, TaskProgress, TaskRecord
from qtasks_django.serialization import MAX_DEPTH, storable_text
from tests.tasks import add
from tests.tasks_integration import it_kwargs, it_produces, it_yields

pytestmark = pytest.mark.django_db(transaction=True)

# Every code point, surrogates and NUL included: what a decoded file name or a form may hold.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities included: refused
    | st.floats(min_value=1e15, max_value=1e300)  # jsonb once turned these into ints
    | ANY_TEXT
)
NOT_JSON = st.sampled_from([b"x", {1, 2}, object(), 1j, range(2)])
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(ANY_TEXT, inner, max_size=4)
        | st.dictionaries(st.integers() | st.none(), inner, min_size=1, max_size=2)
        | NOT_JSON
    ),
    max_leaves=12,
)
HYPOTHESIS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def circular() -> list[Any]:
    value: list[Any] = [1]
    value.append(value)
    return value


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def same(got: Any, sent: Any) -> bool:
    """Equal, with the same JSON types all the way down (1.0 is not 1; a tuple comes back a list)."""
    if isinstance(sent, tuple | list):
        return isinstance(got, list) and len(got) == len(sent) and all(map(same, got, sent))
    if isinstance(sent, dict):
        return (
            isinstance(got, dict)
            and got.keys() == sent.keys()
            and all(same(got[k], v) for k, v in sent.items())
        )
    return type(got) is type(sent) and got == sent


def refuse_or_store(enqueue, values: list[Any]) -> None:
    """Run ``enqueue`` inside the caller's transaction; check it stored ``values`` exactly or refused them."""
    before = set(TaskRecord.objects.values_list("pk", flat=True))
    with transaction.atomic():
        try:
            tasks = enqueue()
        except QTasksError as exc:
            assert "args[0]" in str(exc), f"the refusal does not say where: {exc}"
            # The caller's transaction is still usable, and nothing was written.
            assert set(TaskRecord.objects.values_list("pk", flat=True)) == before
            return
    stored = TaskRecord.objects.in_bulk([task.uuid for task in tasks])
    for task, value in zip(tasks, values, strict=True):
        assert same(stored[task.uuid].args, [value]), (stored[task.uuid].args, value)


@HYPOTHESIS
@given(value=VALUES)
def test_any_value_enqueued_alone_is_stored_exactly_or_refused_naming_it(value: Any) -> None:
    refuse_or_store(lambda: [it_kwargs.add_task(value)], [value])


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        ("x\ud800y", "args[0]: the string holds a lone surrogate"),
        ("a\x00b", "args[0]: the string holds a NUL character"),
        ({"k\x00": 1}, "args[0]: the key 'k\\x00' holds a NUL character"),
        (circular(), "args[0][1]: the value contains itself"),
        (nested(MAX_DEPTH - 2), None),  # with args itself: 100 levels
        (nested(MAX_DEPTH - 1), "nested deeper than 100 levels"),
        (nested(10_000), "nested deeper than 100 levels"),
        (10**5000, "args[0]: an integer of 16610 bits is too large to store"),
        (1e16, None),
        ([-1.5e300, 2.0**53, 5e-324, 1e-7], None),
    ],
    ids=[
        "surrogate",
        "nul",
        "nul-key",
        "circular",
        "deepest",
        "too-deep",
        "10000-deep",
        "huge-int",
        "1e16",
        "floats",
    ],
)
def test_known_hostile_values_are_refused_naming_them_or_stored_exactly(
    value: Any, refusal: str | None
) -> None:
    if refusal is None:
        refuse_or_store(lambda: [it_kwargs.add_task(value)], [value])
        assert TaskRecord.objects.count() == 1
        return
    with transaction.atomic():
        with pytest.raises(InvalidTaskArguments) as excinfo:
            it_kwargs.add_task(value)
        assert TaskRecord.objects.count() == 0  # the transaction is usable
    assert refusal in str(excinfo.value)


@HYPOTHESIS
@given(values=st.lists(VALUES, min_size=1, max_size=4))
@example(values=[1, "a\x00b"])
@example(values=["ok", "x\ud800"])
def test_any_values_enqueued_in_bulk_are_all_stored_exactly_or_all_refused(values: list[Any]) -> None:
    refuse_or_store(lambda: app.add_tasks([it_kwargs(value) for value in values]), values)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"priority": 2**31}, "priority must be an int from -2147483648 to 2147483647"),
        ({"priority": -(2**31) - 1}, "priority must be an int from -2147483648 to 2147483647"),
        ({"countdown": math.inf}, "countdown of inf seconds ends past the last date"),
        ({"countdown": 1e18}, "countdown of 1e+18 seconds ends past the last date"),
        ({"countdown": math.nan}, "countdown must be a number of seconds >= 0"),
    ],
    ids=["priority-high", "priority-low", "countdown-inf", "countdown-huge", "countdown-nan"],
)
def test_options_the_columns_cannot_hold_are_refused_inside_a_usable_transaction(options, message) -> None:
    with transaction.atomic():
        with pytest.raises(InvalidTaskArguments) as excinfo:
            add.add_task(1, 2, **options)
        add.add_task(1, 2)  # the transaction goes on
    assert message in str(excinfo.value)
    assert TaskRecord.objects.count() == 1


# -- what tasks produce ---------------------------------------------------------------------------

CODE_POINTS = st.lists(st.integers(min_value=0, max_value=0x10FFFF), max_size=8)
KINDS = st.sampled_from(["return", "return_key", "raise", "log", "yield"])


def produce(kind: str, code_points: list[int]):
    return it_yields.add_task(code_points) if kind == "yield" else it_produces.add_task(kind, code_points)


def check_recorded(kind: str, text: str, row: TaskRecord) -> None:
    """The task ended with a record a user can read."""
    problem = unstorable_text(text)
    if kind in ("return", "return_key", "yield") and problem:
        assert row.status == "error", (kind, text, row.status)
        assert "result" in row.traceback or "progress item" in row.traceback
        assert problem in row.traceback, row.traceback[-500:]
        return
    if kind == "raise":
        assert row.status == "error"
        assert (
            f"ValueError: {storable_text(text)}" in row.traceback if text else "ValueError\n" in row.traceback
        )
        return
    assert row.status == "success", (kind, text, row.traceback[-500:])
    if kind == "return":
        assert row.returning == text
    elif kind == "return_key":
        assert row.returning == {text: 1}
    elif kind == "log":
        assert list(TaskLog.objects.filter(task_id=row.pk).values_list("message", flat=True)) == [
            storable_text(text)
        ]
    else:
        assert list(TaskProgress.objects.filter(task_id=row.pk).values_list("value", flat=True)) == [text]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(KINDS, CODE_POINTS), min_size=1, max_size=6))
@example(batch=[(kind, [ord("x"), 0xD800, ord("y")]) for kind in ("return", "raise", "log", "yield")])
@example(
    batch=[(kind, [ord("a"), 0, ord("b")]) for kind in ("return", "return_key", "raise", "log", "yield")]
)
def test_whatever_a_task_produces_ends_its_own_task_readably_and_the_worker_goes_on(
    run_worker, batch
) -> None:
    produced = [(kind, code_points, produce(kind, code_points)) for kind, code_points in batch]
    neighbours = [add.add_task(i, 1) for i in range(3)]

    worker = run_worker()

    rows = TaskRecord.objects.in_bulk([task.uuid for *_, task in produced] + [t.uuid for t in neighbours])
    for kind, code_points, task in produced:
        check_recorded(kind, "".join(map(chr, code_points)), rows[task.uuid])
    assert [rows[t.uuid].returning for t in neighbours] == [1, 2, 3]
    assert worker.failure is None
