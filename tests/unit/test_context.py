"""``self.ctx`` members that need no database (context.py)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from qtasks_django import QueueTasks, TaskCancelError, TaskContext, TaskPluginTriggerError
from qtasks_django.conf import QTasksSettings, settings


@pytest.fixture
def ctx(fresh_app: QueueTasks) -> TaskContext:
    return TaskContext(
        app=fresh_app, task_name="unit_ctx", task_uuid=uuid.uuid4(), components={"worker": "w"}
    )


@pytest.fixture
def actx(fresh_app: QueueTasks) -> TaskContext:
    return TaskContext(app=fresh_app, task_name="unit_actx", task_uuid=uuid.uuid4(), is_async=True)


# -- cancel and plugin_error ---------------------------------------------------------------------------


def test_cancel_raises_task_cancel_error_with_the_reason(ctx: TaskContext) -> None:
    with pytest.raises(TaskCancelError) as excinfo:
        ctx.cancel("customer asked")
    assert excinfo.value.reason == "customer asked"
    assert str(excinfo.value) == "customer asked"


def test_cancel_without_a_reason_names_the_task(ctx: TaskContext) -> None:
    with pytest.raises(TaskCancelError) as excinfo:
        ctx.cancel()
    assert excinfo.value.reason == "unit_ctx.cancel"


def test_plugin_error_carries_its_keywords(ctx: TaskContext) -> None:
    with pytest.raises(TaskPluginTriggerError) as excinfo:
        ctx.plugin_error(code=7, detail="quota")
    assert excinfo.value.kwargs == {"code": 7, "detail": "quota"}


# -- components and config -------------------------------------------------------------------------------


def test_get_component_returns_app_config_and_given_components(
    ctx: TaskContext, fresh_app: QueueTasks
) -> None:
    assert ctx.get_component("app") is fresh_app
    assert isinstance(ctx.get_component("config"), QTasksSettings)
    assert ctx.get_component("worker") == "w"


def test_unknown_component_is_a_lookup_error_listing_the_known_ones(ctx: TaskContext) -> None:
    with pytest.raises(LookupError, match=r"no component 'broker'; known: app, config, worker"):
        ctx.get_component("broker")


def test_get_config_returns_the_qtasks_settings(ctx: TaskContext) -> None:
    config = ctx.get_config()
    assert config is settings.load()
    assert config.LEASE_TIMEOUT == 5


# -- sleep ---------------------------------------------------------------------------------------------------


def test_sleep_sleeps_when_nothing_stops_the_task(ctx: TaskContext) -> None:
    started = time.monotonic()
    assert ctx.sleep(0.05) is None
    assert time.monotonic() - started >= 0.05


def test_sleep_raises_cancel_at_once_when_the_task_must_stop(ctx: TaskContext) -> None:
    ctx.stop_event.set()
    started = time.monotonic()
    with pytest.raises(TaskCancelError, match="unit_ctx: stopped by the worker"):
        ctx.sleep(60)
    assert time.monotonic() - started < 5


def test_sleep_wakes_up_with_a_cancel_when_stopped_meanwhile(ctx: TaskContext) -> None:
    ctx.stop_reason = "worker shutting down"
    timer = threading.Timer(0.05, ctx.stop_event.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(TaskCancelError, match="worker shutting down"):
            ctx.sleep(60)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5


async def test_async_sleep_sleeps_when_nothing_stops_the_task(actx: TaskContext) -> None:
    started = time.monotonic()
    awaitable = actx.sleep(0.05)  # an async task gets an awaitable from ctx.sleep
    assert asyncio.iscoroutine(awaitable)
    assert await awaitable is None
    assert time.monotonic() - started >= 0.05


async def test_async_sleep_raises_cancel_at_once_when_the_task_must_stop(actx: TaskContext) -> None:
    actx.stop_event.set()
    started = time.monotonic()
    with pytest.raises(TaskCancelError, match="unit_actx: stopped by the worker"):
        await actx.asleep(60)
    assert time.monotonic() - started < 5


async def test_async_sleep_wakes_up_with_a_cancel_when_stopped_meanwhile(actx: TaskContext) -> None:
    actx.stop_reason = "cancelled from the admin"
    asyncio.get_running_loop().call_later(0.05, actx.stop_event.set)
    started = time.monotonic()
    with pytest.raises(TaskCancelError, match="cancelled from the admin"):
        await actx.sleep(60)
    assert time.monotonic() - started < 5


async def test_async_sleep_keeps_the_event_loop_free(actx: TaskContext) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    background = asyncio.create_task(ticker())
    try:
        await actx.asleep(0.2)
    finally:
        background.cancel()
    assert ticks >= 3


# -- logger --------------------------------------------------------------------------------------------------


def test_logger_lines_are_kept_with_level_and_formatted_message(ctx: TaskContext) -> None:
    log = ctx.get_logger()
    log.info("hello %s, %d items", "Ann", 3)
    log.warning("careful")
    log.error("failed: %r", {"k": 1})

    assert [(line["level"], line["message"]) for line in ctx.log_lines] == [
        ("INFO", "hello Ann, 3 items"),
        ("WARNING", "careful"),
        ("ERROR", "failed: {'k': 1}"),
    ]
    assert {line["logger"] for line in ctx.log_lines} == {"qtasks_django.tasks.unit_ctx"}
    assert all(line["created_at"].tzinfo is not None for line in ctx.log_lines)


def test_named_logger_is_kept_under_its_name(ctx: TaskContext) -> None:
    ctx.get_logger("billing").info("charged")
    assert ctx.log_lines[0]["logger"] == "qtasks_django.tasks.billing"
    assert ctx.log_lines[0]["message"] == "charged"


def test_logger_lines_below_the_level_are_not_kept(ctx: TaskContext) -> None:
    # The suite logs qtasks_django at INFO.
    ctx.get_logger().debug("noise")
    assert ctx.log_lines == []


def test_logger_lines_also_reach_python_logging(ctx: TaskContext, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="qtasks_django.tasks"):
        ctx.get_logger().info("visible %s", "too")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("qtasks_django.tasks.unit_ctx", "visible too")
    ]


# -- metadata -------------------------------------------------------------------------------------------------


def test_get_metadata_outside_a_running_task_is_a_value_error(fresh_app: QueueTasks) -> None:
    ctx = TaskContext(app=fresh_app, task_name="unit_no_uuid")
    with pytest.raises(ValueError, match="needs a running task"):
        ctx.get_metadata()


async def test_async_get_metadata_outside_a_running_task_is_a_value_error(fresh_app: QueueTasks) -> None:
    ctx = TaskContext(app=fresh_app, task_name="unit_no_uuid", is_async=True)
    with pytest.raises(ValueError, match="needs a running task"):
        await ctx.get_metadata()
    with pytest.raises(ValueError, match="needs a running task"):
        await ctx.aget_metadata()
