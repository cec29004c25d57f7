"""Enqueue-time checks: names, binding, JSON, size, priority (validation.py, serialization.py).

The last tests go through ``add_task`` itself: the checks run before any row is written,
and this tier has no database, so a query would fail them.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid

import pytest
from django.test import override_settings

from qtasks_django import (
    InvalidTaskArguments,
    PayloadTooLarge,
    QTasksError,
    QueueTasks,
    TaskNotRegistered,
)
from qtasks_django.serialization import encoded_size, find_non_json, to_json
from qtasks_django.tasks.definition import build_schema
from qtasks_django.tasks.validation import check_binding, resolve_schema, validate_call, validate_priority


def _schema(func, **options):
    return build_schema(func, name=options.pop("name", func.__name__), priority=0, **options)


def two_args(a, b, *, flag=False):
    return a, b, flag


def echo_one(self, x):
    return x


# -- names -------------------------------------------------------------------------------


def test_registered_name_resolves_to_its_schema() -> None:
    schema = _schema(two_args)
    assert resolve_schema({"two_args": schema}, "two_args") is schema


def test_unknown_name_is_not_registered_and_lists_known_names() -> None:
    tasks = {"beta": _schema(two_args, name="beta"), "alpha": _schema(two_args, name="alpha")}
    with pytest.raises(
        TaskNotRegistered, match=r"No task named 'gamma' is registered \(known: alpha, beta\)"
    ):
        resolve_schema(tasks, "gamma")


def test_unknown_name_with_no_tasks_says_none_are_known() -> None:
    with pytest.raises(TaskNotRegistered, match=r"known: none"):
        resolve_schema({}, "anything")


def test_non_string_name_is_not_registered() -> None:
    with pytest.raises(TaskNotRegistered, match="must be a string, got int"):
        resolve_schema({"1": _schema(two_args)}, 1)


def test_task_not_registered_is_a_lookup_error() -> None:
    # Callers catching LookupError/KeyError-style failures still catch it.
    with pytest.raises(LookupError):
        resolve_schema({}, "x")


# -- binding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1, 2), {}), ((1,), {"b": 2}), ((), {"a": 1, "b": 2, "flag": True})],
    ids=["positional", "mixed", "keywords"],
)
def test_arguments_that_bind_pass(args, kwargs) -> None:
    check_binding(_schema(two_args), args, kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((1,), {}, "missing a required argument: 'b'"),
        ((1, 2, 3), {}, "too many positional arguments"),
        ((1, 2), {"colour": "red"}, "unexpected keyword argument 'colour'"),
        ((1, 2, True), {}, "too many positional arguments"),
    ],
    ids=["too-few", "too-many", "unknown-kwarg", "keyword-only-given-positionally"],
)
def test_arguments_that_do_not_bind_are_invalid(args, kwargs, message) -> None:
    with pytest.raises(InvalidTaskArguments) as excinfo:
        check_binding(_schema(two_args), args, kwargs)
    assert "Task 'two_args'(a, b, *, flag=False)" in str(excinfo.value)
    assert message in str(excinfo.value)


def test_echo_task_binds_without_its_self_parameter() -> None:
    schema = _schema(echo_one, echo=True)
    check_binding(schema, (5,), {})
    with pytest.raises(InvalidTaskArguments, match="too many positional arguments"):
        check_binding(schema, ("self", 5), {})


def test_non_echo_task_binds_every_parameter() -> None:
    with pytest.raises(InvalidTaskArguments, match="missing a required argument: 'x'"):
        check_binding(_schema(echo_one), (5,), {})


def test_builtin_without_signature_is_not_bound() -> None:
    # ``max`` has no introspectable signature: the call is accepted as is, not rejected.
    check_binding(_schema(max, name="unit_max"), (1, 2, 3), {"default": 0})


# -- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -3, 1.5, "text", "", [], {}, [1, "a", None], {"k": [1, {"n": 2.5}]}, (1, 2)],
    ids=repr,
)
def test_plain_json_values_pass(value) -> None:
    assert find_non_json(value, "args") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([object()], "args[0]: object <object object at"),
        ([{1, 2}], "args[0]: set {1, 2} is not JSON-serialisable"),
        ([b"raw"], "args[0]: bytes b'raw' is not JSON-serialisable"),
        ([datetime.date(2024, 1, 2)], "args[0]: date datetime.date(2024, 1, 2) is not JSON-serialisable"),
        ([decimal.Decimal("1.5")], "args[0]: Decimal Decimal('1.5') is not JSON-serialisable"),
        ([uuid.UUID(int=0)], "args[0]: UUID"),
        ([1, {"when": datetime.datetime(2024, 1, 2)}], "args[1]['when']: datetime"),
        ([{1: "a"}], "args[0]: key 1 is not a string"),
        ([{"ok": {None: 1}}], "args[0]['ok']: key None is not a string"),
        ([float("nan")], "args[0]: nan is not valid JSON"),
        ([[1, float("inf")]], "args[0][1]: inf is not valid JSON"),
        ([-float("inf")], "args[0]: -inf is not valid JSON"),
    ],
    ids=[
        "object",
        "set",
        "bytes",
        "date",
        "decimal",
        "uuid",
        "nested-datetime",
        "int-key",
        "none-key",
        "nan",
        "inf",
        "-inf",
    ],
)
def test_non_json_values_are_found_with_their_path(value, expected) -> None:
    problem = find_non_json(value, "args")
    assert problem is not None
    assert problem.startswith(expected)


def test_non_json_value_without_a_path_is_called_value() -> None:
    assert find_non_json(object()).startswith("value: object")


def test_long_reprs_are_shortened() -> None:
    problem = find_non_json({b"x" * 500}, "args")
    assert problem is not None
    assert len(problem) < 150
    assert "..." in problem


def test_encoded_size_is_the_compact_utf8_json_size() -> None:
    assert encoded_size([1, 2], {"a": "b"}) == len(b"[1,2]") + len(b'{"a":"b"}')
    assert encoded_size(["é"]) == len('["é"]'.encode())


def test_to_json_turns_tuples_into_lists() -> None:
    assert to_json({"t": (1, (2, 3))}) == {"t": [1, [2, 3]]}


def test_to_json_turns_subclasses_of_scalars_into_plain_values() -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    class Colour(enum.StrEnum):
        RED = "red"

    for stored in (
        to_json([Level.HIGH, Colour.RED]),
        list(to_json({"a": Level.HIGH, "b": Colour.RED}).values()),
    ):
        assert stored == [3, "red"]
        assert [type(item) for item in stored] == [int, str]


def test_to_json_returns_a_copy_the_caller_cannot_change() -> None:
    flat, nested = [1, "a"], {"k": [1]}
    stored_flat, stored_nested = to_json(flat), to_json(nested)

    flat.append(2)
    nested["k"].append(2)

    assert (stored_flat, stored_nested) == ([1, "a"], {"k": [1]})


@pytest.mark.parametrize(
    ("args", "kwargs", "path"),
    [
        ((object(), 1), {}, "args[0]"),
        ((1, {1, 2}), {}, "args[1]"),
        ((1, 2), {"flag": b"x"}, "kwargs['flag']"),
        ((1, {3: "x"}), {}, "args[1]: key 3"),
        ((float("nan"), 2), {}, "args[0]: nan"),
        ((datetime.datetime(2024, 1, 1), 2), {}, "args[0]: datetime"),
    ],
    ids=["object", "set", "bytes-kwarg", "int-key", "nan", "datetime"],
)
def test_call_with_non_json_arguments_is_invalid_naming_the_path(args, kwargs, path) -> None:
    with pytest.raises(InvalidTaskArguments) as excinfo:
        validate_call(_schema(two_args), args, kwargs, max_bytes=10_000)
    message = str(excinfo.value)
    assert message.startswith(f"Task 'two_args': {path}")
    assert "only JSON values can be enqueued" in message


def test_call_within_the_size_cap_passes() -> None:
    validate_call(_schema(two_args), ("x" * 10, 1), {}, max_bytes=encoded_size(["x" * 10, 1], {}))


def test_call_over_the_size_cap_is_too_large() -> None:
    args = ("x" * 100, 1)
    size = encoded_size(list(args), {})
    with pytest.raises(
        PayloadTooLarge, match=rf"arguments take {size} bytes as JSON, above the cap of {size - 1}"
    ):
        validate_call(_schema(two_args), args, {}, max_bytes=size - 1)


@pytest.mark.parametrize("priority", [0, -5, 10])
def test_integer_priority_is_accepted(priority) -> None:
    assert validate_priority(priority) == priority


@pytest.mark.parametrize("priority", [True, False, "1", 1.0, None], ids=repr)
def test_non_integer_priority_is_invalid(priority) -> None:
    with pytest.raises(InvalidTaskArguments, match="priority must be an int"):
        validate_priority(priority)


# -- through add_task: the checks run before anything is written ---------------------------------


def _sync_task(app):
    return app.task(name="unit_checked")(two_args)


def _async_task(app):
    async def unit_achecked(a, b, *, flag=False):
        return a

    return app.task(name="unit_checked")(unit_achecked)


async def _enqueue(task, *args, **kwargs):
    result = task.add_task(*args, **kwargs)
    if hasattr(result, "__await__"):
        result = await result
    return result


TWINS = pytest.mark.parametrize("make", [_sync_task, _async_task], ids=["sync", "async"])


@TWINS
async def test_add_task_with_arguments_that_do_not_bind_writes_nothing(fresh_app: QueueTasks, make) -> None:
    task = make(fresh_app)
    with pytest.raises(InvalidTaskArguments, match="missing a required argument: 'b'"):
        await _enqueue(task, 1)


@TWINS
async def test_add_task_with_non_json_arguments_writes_nothing(fresh_app: QueueTasks, make) -> None:
    task = make(fresh_app)
    with pytest.raises(InvalidTaskArguments, match=r"args\[1\]: set"):
        await _enqueue(task, 1, {2})


@TWINS
async def test_add_task_over_the_payload_cap_writes_nothing(fresh_app: QueueTasks, make) -> None:
    task = make(fresh_app)
    with (
        override_settings(QTASKS={"MAX_PAYLOAD_BYTES": 50}),
        pytest.raises(PayloadTooLarge, match="cap of 50"),
    ):
        await _enqueue(task, "x" * 60, 1)


@TWINS
async def test_add_task_with_a_bad_priority_writes_nothing(fresh_app: QueueTasks, make) -> None:
    task = make(fresh_app)
    with pytest.raises(InvalidTaskArguments, match="priority must be an int"):
        await _enqueue(task, 1, 2, priority="high")


@pytest.mark.parametrize("timeout", [-1, "5", True], ids=repr)
@pytest.mark.parametrize(
    "make",
    [
        _sync_task,
        _async_task,
    ],
    ids=["sync", "async"],
)
async def test_add_task_with_a_bad_timeout_writes_nothing(fresh_app: QueueTasks, make, timeout) -> None:
    task = make(fresh_app)
    with pytest.raises(QTasksError, match="timeout must be a number of seconds >= 0"):
        await _enqueue(task, 1, 2, timeout=timeout)


@TWINS
async def test_prebuilt_call_is_validated_when_it_is_enqueued(fresh_app: QueueTasks, make) -> None:
    call = make(fresh_app)(1, 2, colour="red")  # building the call checks nothing yet
    with pytest.raises(InvalidTaskArguments, match="unexpected keyword argument 'colour'"):
        await _enqueue(call)


def test_app_add_task_with_an_unknown_name_writes_nothing(fresh_app: QueueTasks) -> None:
    fresh_app.task(name="unit_known")(two_args)
    with pytest.raises(TaskNotRegistered, match=r"'unit_missing'.*unit_known"):
        fresh_app.add_task("unit_missing", 1, 2)


async def test_app_aadd_task_with_an_unknown_name_writes_nothing(fresh_app: QueueTasks) -> None:
    with pytest.raises(TaskNotRegistered, match="'unit_missing'"):
        await fresh_app.aadd_task("unit_missing", 1, 2)
