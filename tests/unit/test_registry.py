"""Declaring tasks: the three decorators, their parameters, the registry rules (§2 "Declaring").

Every test declares on a fresh ``QueueTasks``/router, or through the ``shared`` fixture
whose shared tasks are removed afterwards, so the default app is never changed.
"""

from __future__ import annotations

import inspect
import re

import pytest
from django.test import override_settings

from qtasks_django import (
    AsyncRouter,
    AsyncTask,
    DuplicateTaskName,
    InvalidTaskDefinition,
    QTasksError,
    QueueTasks,
    SyncRouter,
    SyncTask,
    TaskExecSchema,
    TaskExecutor,
    TaskMiddleware,
)
from qtasks_django import app as default_app

from .conftest import Registry


class Before(TaskMiddleware):
    pass


class After(TaskMiddleware):
    pass


class MyExecutor(TaskExecutor):
    pass


def _handler(value):
    return value


def _decode(value):
    return value


# -- the three decorators, bare and called -----------------------------------------


def test_bare_decorator_registers_the_function_under_its_name(registry: Registry) -> None:
    @registry.task
    def unit_bare(x):
        return x * 2

    registry.publish()
    assert isinstance(unit_bare, SyncTask)
    assert unit_bare.task_name == "unit_bare"
    assert registry.app.tasks["unit_bare"] is unit_bare.schema
    assert unit_bare.schema.func(4) == 8


def test_called_decorator_without_arguments_registers_the_function(registry: Registry) -> None:
    @registry.task()
    def unit_called():
        return "ok"

    registry.publish()
    assert unit_called.task_name == "unit_called"
    assert registry.app.tasks["unit_called"].func() == "ok"


@pytest.mark.parametrize("how", ["positional", "keyword"])
def test_name_given_to_the_decorator_replaces_the_function_name(registry: Registry, how: str) -> None:
    decorator = registry.task("unit_renamed") if how == "positional" else registry.task(name="unit_renamed")

    @decorator
    def some_function():
        return None

    registry.publish()
    assert some_function.task_name == "unit_renamed"
    assert "unit_renamed" in registry.app.tasks
    assert "some_function" not in registry.app.tasks


def test_task_object_keeps_the_function_identity(registry: Registry) -> None:
    def unit_documented(a, b=1):
        """Adds things."""
        return a + b

    task = registry.task(unit_documented)
    assert task.__name__ == "unit_documented"
    assert task.__doc__ == "Adds things."
    assert task.__wrapped__ is unit_documented
    assert task.func is unit_documented


# -- parameters and defaults --------------------------------------------------------

_DEFAULTS = {
    "echo": False,
    "max_time": None,
    "retry": None,
    "retry_on_exc": None,
    "decode": None,
    "tags": None,
    "description": None,
    "generate_handler": None,
    "executor": None,
    "middlewares_before": [],
    "middlewares_after": [],
    "extra": {},
}


def test_parameters_default_as_in_the_seed_table(registry: Registry) -> None:
    @registry.task
    def unit_defaults():
        return None

    for option, expected in _DEFAULTS.items():
        assert getattr(unit_defaults, option) == expected, option
        assert getattr(unit_defaults.schema, option) == expected, option
    assert unit_defaults.priority == unit_defaults.schema.priority == 0


def test_default_priority_is_the_setting_read_at_declaration(registry: Registry) -> None:
    with override_settings(QTASKS={"DEFAULT_PRIORITY": 7}):

        @registry.task
        def unit_prio_seven():
            return None

    @registry.task
    def unit_prio_zero():
        return None

    # Declared under DEFAULT_PRIORITY=7, the task keeps 7 after the setting changes back.
    assert unit_prio_seven.priority == unit_prio_seven.schema.priority == 7
    assert unit_prio_zero.priority == unit_prio_zero.schema.priority == 0


def test_every_parameter_reaches_the_task_object_and_its_schema(registry: Registry) -> None:
    options = {
        "priority": 4,
        "echo": True,
        "max_time": 12.5,
        "retry": 3,
        "retry_on_exc": [ValueError, KeyError],
        "decode": _decode,
        "tags": ["reports", "nightly"],
        "description": "Builds the report",
        "generate_handler": _handler,
        "executor": MyExecutor,
        "middlewares_before": [Before],
        "middlewares_after": [After],
    }

    @registry.task(name="unit_all_options", **options)
    def unit_all_options(self):
        return None

    for option, expected in options.items():
        assert getattr(unit_all_options, option) == expected, option
        assert getattr(unit_all_options.schema, option) == expected, option
    assert unit_all_options.task_name == unit_all_options.schema.name == "unit_all_options"


def test_max_time_is_a_float_number_of_seconds(registry: Registry) -> None:
    @registry.task(max_time=3)
    def unit_max_time():
        return None

    assert unit_max_time.max_time == 3.0
    assert isinstance(unit_max_time.schema.max_time, float)


def test_unknown_keywords_land_in_extra_on_object_and_schema(registry: Registry) -> None:
    @registry.task(queue="emails", owner="team-a", limits={"per_minute": 5})
    def unit_with_extra():
        return None

    expected = {"queue": "emails", "owner": "team-a", "limits": {"per_minute": 5}}
    assert unit_with_extra.extra == expected
    assert unit_with_extra.schema.extra == expected
    assert unit_with_extra.schema.queue == "emails"


def test_queue_is_none_when_the_task_names_none(registry: Registry) -> None:
    @registry.task
    def unit_no_queue():
        return None

    assert unit_no_queue.schema.queue is None


# -- sync and async faces -------------------------------------------------------------


def _sync_func():
    return 1


async def _async_func():
    return 1


def _sync_gen():
    yield 1


async def _async_gen():
    yield 1


@pytest.mark.parametrize(
    ("func", "awaiting", "generating"),
    [
        (_sync_func, False, False),
        (_async_func, True, False),
        (_sync_gen, False, "sync"),
        (_async_gen, True, "async"),  # an async def gives an AsyncTask (upstream gave SyncTask)
    ],
    ids=["def", "async-def", "generator", "async-generator"],
)
def test_schema_records_awaiting_and_generating(fresh_app: QueueTasks, func, awaiting, generating) -> None:
    task = fresh_app.task(name=f"unit_kind_{func.__name__}")(func)
    assert isinstance(task.schema, TaskExecSchema)
    assert task.schema.awaiting is awaiting
    assert task.schema.generating == generating
    assert task.generating == generating


def test_sync_function_gives_a_sync_task_with_blocking_add_task(registry: Registry) -> None:
    @registry.task
    def unit_sync_face():
        return None

    assert type(unit_sync_face) is SyncTask
    assert not inspect.iscoroutinefunction(unit_sync_face.add_task)


def test_async_function_gives_an_async_task_with_awaitable_add_task(registry: Registry) -> None:
    @registry.task
    async def unit_async_face():
        return None

    assert type(unit_async_face) is AsyncTask
    assert inspect.iscoroutinefunction(unit_async_face.add_task)


def test_awaiting_true_makes_a_shared_sync_function_an_async_task(shared) -> None:
    @shared(awaiting=True)
    def unit_awaiting_sync(x):
        return x

    assert type(unit_awaiting_sync) is AsyncTask
    assert inspect.iscoroutinefunction(unit_awaiting_sync.add_task)
    assert unit_awaiting_sync.schema.awaiting is True
    assert unit_awaiting_sync.awaiting is True


def test_awaiting_false_makes_a_shared_async_function_a_sync_task(shared) -> None:
    @shared(awaiting=False)
    async def unit_not_awaiting():
        return None

    assert type(unit_not_awaiting) is SyncTask
    assert unit_not_awaiting.schema.awaiting is False


# -- duplicate names -------------------------------------------------------------------


def test_duplicate_name_in_one_app_is_an_error_naming_the_first_function(fresh_app: QueueTasks) -> None:
    @fresh_app.task(name="unit_dup")
    def first():
        return 1

    with pytest.raises(DuplicateTaskName, match=r"'unit_dup' is already registered .*first"):

        @fresh_app.task(name="unit_dup")
        def second():
            return 2

    assert fresh_app.tasks["unit_dup"].func is first.func


def test_app_task_named_like_a_shared_task_is_a_duplicate(fresh_app: QueueTasks) -> None:
    # "add" is a shared task of tests/tasks.py.
    with pytest.raises(DuplicateTaskName, match="'add'"):

        @fresh_app.task(name="add")
        def my_add(a, b):
            return a - b


def test_shared_task_named_like_a_default_app_task_is_a_duplicate(shared) -> None:
    # "echo_task" is a task of the default app (tests/tasks.py).
    with pytest.raises(DuplicateTaskName, match="'echo_task'"):

        @shared(name="echo_task")
        def my_echo():
            return None

    assert default_app.tasks["echo_task"].func.__module__ == "tests.tasks"


def test_shared_task_named_like_another_shared_task_is_a_duplicate(shared) -> None:
    with pytest.raises(DuplicateTaskName, match="'add'"):

        @shared(name="add")
        def my_add(a, b):
            return a - b


def test_shared_task_named_like_a_task_of_another_app_is_a_duplicate(fresh_app: QueueTasks, shared) -> None:
    @fresh_app.task(name="unit_owned_by_app")
    def owned():
        return "app"

    with pytest.raises(DuplicateTaskName):

        @shared(name="unit_owned_by_app")
        def also_owned():
            return "shared"


def test_including_a_router_with_a_taken_name_is_a_duplicate(fresh_app: QueueTasks) -> None:
    router = SyncRouter()

    @router.task(name="add")
    def routed_add(a, b):
        return a - b

    with pytest.raises(DuplicateTaskName, match="'add'"):
        fresh_app.include_router(router)


def test_two_routers_with_one_name_clash_on_include(fresh_app: QueueTasks) -> None:
    first, second = SyncRouter(), AsyncRouter()
    first.task(name="unit_routed_twice")(lambda: 1)
    second.task(name="unit_routed_twice")(lambda: 2)
    fresh_app.include_router(first)
    with pytest.raises(DuplicateTaskName, match="'unit_routed_twice'"):
        fresh_app.include_router(second)


def test_duplicate_name_in_one_router_is_an_error_at_declaration() -> None:
    router = AsyncRouter()
    router.task(name="unit_in_router")(lambda: 1)
    with pytest.raises(DuplicateTaskName):
        router.task(name="unit_in_router")(lambda: 2)


# -- routers and the app ------------------------------------------------------------------


@pytest.mark.parametrize("router_cls", [SyncRouter, AsyncRouter])
def test_router_tasks_join_the_app_on_include(fresh_app: QueueTasks, router_cls) -> None:
    router = router_cls()

    @router.task
    def unit_routed(x):
        return x

    @router.task()
    async def unit_arouted(x):
        return x

    with pytest.raises(QTasksError, match="include_router"):
        _ = unit_routed.app
    fresh_app.include_router(router)
    assert fresh_app.tasks["unit_routed"] is unit_routed.schema
    assert fresh_app.tasks["unit_arouted"] is unit_arouted.schema
    assert unit_routed.app is fresh_app
    assert router.app is fresh_app
    assert fresh_app.routers == [router]


def test_including_the_same_router_twice_changes_nothing(fresh_app: QueueTasks) -> None:
    router = SyncRouter()
    router.task(name="unit_once")(lambda: 1)
    fresh_app.include_router(router)
    fresh_app.include_router(router)
    assert fresh_app.routers == [router]
    assert list(fresh_app.tasks).count("unit_once") == 1


def test_app_task_belongs_to_its_app(fresh_app: QueueTasks) -> None:
    @fresh_app.task
    def unit_app_owned():
        return None

    assert unit_app_owned.app is fresh_app
    assert "unit_app_owned" in fresh_app.tasks
    assert "unit_app_owned" not in default_app.tasks


def test_shared_task_declared_after_an_app_is_built_is_in_its_tasks(shared) -> None:
    late_app = QueueTasks("built-before")

    @shared
    def unit_declared_late():
        return "late"

    assert late_app.tasks["unit_declared_late"] is unit_declared_late.schema
    assert default_app.tasks["unit_declared_late"] is unit_declared_late.schema
    # A shared task enqueues through the configured app (QTASKS["APP"], the default one).
    assert unit_declared_late.app is default_app


# -- invalid definitions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("retry", -1, "retry must be an int from 0 to 2147483647"),
        ("retry", True, "retry must be an int from 0 to 2147483647"),
        ("retry_on_exc", [int], "retry_on_exc must be a list of BaseException subclasses"),
        ("retry_on_exc", ValueError, "retry_on_exc must be a list of BaseException subclasses"),
        ("executor", object, "executor must be a BaseTaskExecutor subclass"),
        (
            "executor",
            "qtasks_django.tasks.executors.TaskExecutor",
            "executor must be a BaseTaskExecutor subclass",
        ),
        ("middlewares_before", [object], "middlewares_before must be a list of TaskMiddleware subclasses"),
        ("middlewares_after", Before, "middlewares_after must be a list of TaskMiddleware subclasses"),
        ("max_time", 0, "max_time must be a number of seconds in (0, 315360000]"),
        ("max_time", -2.5, "max_time must be a number of seconds in (0, 315360000]"),
        ("max_time", "10", "max_time must be a number of seconds in (0, 315360000]"),
        ("tags", "x", "tags must be a list of strings"),
        ("tags", ["ok", 3], "tags must be a list of strings"),
        ("priority", "1", "priority must be an int"),
        ("priority", 1.5, "priority must be an int"),
        ("priority", True, "priority must be an int"),
        ("echo", 1, "echo must be a bool"),
        ("decode", "str", "decode must be callable"),
        ("generate_handler", 5, "generate_handler must be callable"),
        ("description", 5, "description must be a string"),
        ("queue", 5, "queue must be a non-empty string"),
        # What the columns cannot hold is refused here, not by the database later.
        ("priority", 2**31, "priority must be an int from -2147483648 to 2147483647"),
        ("priority", -(2**31) - 1, "priority must be an int from -2147483648 to 2147483647"),
        ("retry", 2**31, "retry must be an int from 0 to 2147483647"),
        ("max_time", float("inf"), "max_time must be a number of seconds in (0, 315360000]"),
        ("max_time", float("nan"), "max_time must be a number of seconds in (0, 315360000]"),
        ("max_time", 1e12, "max_time must be a number of seconds in (0, 315360000]"),
        ("tags", ["ok", "a\x00b"], "holds a NUL character"),
        ("tags", ["\udc80"], "holds a lone surrogate"),
        ("queue", "", "queue must be a non-empty string"),
        ("queue", "q" * 101, "queue names have at most 100 characters, got 101"),
        ("queue", "a\x00", "the queue name holds a NUL character"),
        ("echo", True, "echo=True needs a first parameter for the task"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None,
)
def test_invalid_parameter_is_a_clear_definition_error(registry: Registry, option, value, message) -> None:
    with pytest.raises(InvalidTaskDefinition) as excinfo:

        @registry.task(**{option: value})
        def unit_invalid():
            return None

    assert str(excinfo.value).startswith("Task 'unit_invalid': ")
    assert message in str(excinfo.value)


def test_invalid_definition_registers_nothing(fresh_app: QueueTasks) -> None:
    with pytest.raises(InvalidTaskDefinition):
        fresh_app.task(name="unit_fixed_later", retry=-1)(lambda: None)

    task = fresh_app.task(name="unit_fixed_later", retry=1)(lambda: None)
    assert fresh_app.tasks["unit_fixed_later"] is task.schema


def test_decorating_something_not_callable_is_a_definition_error(fresh_app: QueueTasks) -> None:
    with pytest.raises(InvalidTaskDefinition, match="needs a function"):
        fresh_app.task(name="unit_not_callable")(42)


def test_shared_task_validates_like_the_others(shared) -> None:
    with pytest.raises(
        InvalidTaskDefinition, match=re.escape("max_time must be a number of seconds in (0, 315360000]")
    ):

        @shared(max_time=0)
        def unit_shared_invalid():
            return None


def test_router_task_declared_after_include_is_known_to_the_app(fresh_app: QueueTasks) -> None:
    router = SyncRouter()
    fresh_app.include_router(router)

    @router.task
    def unit_late_routed():
        return 1

    assert fresh_app.tasks["unit_late_routed"] is unit_late_routed.schema
    assert unit_late_routed.app is fresh_app


def test_router_task_clashing_with_the_app_after_include_is_a_duplicate(fresh_app: QueueTasks) -> None:
    @fresh_app.task(name="unit_clash_late")
    def owned():
        return 1

    router = AsyncRouter()
    fresh_app.include_router(router)
    with pytest.raises(DuplicateTaskName):

        @router.task(name="unit_clash_late")
        def routed():
            return 2


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("n" * 256, "the name has 256 characters, above the limit of 255"),
        ("n" * 306, "the name has 306 characters, above the limit of 255"),
        ("bad\x00name", "the name holds a NUL character"),
        ("bad\ud800name", "the name holds a lone surrogate"),
    ],
    ids=["256", "306", "nul", "surrogate"],
)
def test_a_name_the_table_cannot_hold_is_refused_at_declaration(registry: Registry, name, message) -> None:
    with pytest.raises(InvalidTaskDefinition, match=message):

        @registry.task(name=name)
        def unit_long():
            return None

    registry.publish()
    assert name not in registry.app.tasks


def test_the_longest_name_the_column_holds_is_accepted(registry: Registry) -> None:
    @registry.task(name="n" * 255)
    def unit_longest():
        return None

    registry.publish()
    assert "n" * 255 in registry.app.tasks


def test_echo_is_accepted_with_a_first_parameter_of_any_positional_kind(registry: Registry) -> None:
    @registry.task(echo=True)
    def unit_echo_args(*args):
        return args

    @registry.task(echo=True)
    def unit_echo_plain(self, x):
        return x

    registry.publish()
    assert registry.app.tasks["unit_echo_args"].echo and registry.app.tasks["unit_echo_plain"].echo
