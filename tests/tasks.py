"""Tasks the test suite runs: the seed examples as an installed app's tasks.py."""

from __future__ import annotations

import asyncio
import time

from qtasks_django import AsyncRouter, SyncRouter, TaskMiddleware, app, shared_task


@shared_task
def add(a, b):
    return a + b


@shared_task()
def shared_func():
    return "Shared task"


@shared_task(awaiting=True)
async def async_shared():
    return "async shared task"


@shared_task(awaiting=True)
def sync_but_awaiting(x):
    return x


@app.task(echo=True)
async def echo_task(self):
    return {
        "task_name": self.task_name,
        "priority": self.priority,
        "echo": self.echo,
        "max_time": self.max_time,
        "retry": self.retry,
        "class": type(self).__name__,
        "extra": self.extra,
    }


@app.task(echo=True, priority=3, max_time=30, note="hi")
def echo_sync(self, x):
    return {"class": type(self).__name__, "uuid": str(self.ctx.task_uuid), "x": x, "extra": self.extra}


@app.task(echo=True)
def ctx_tour(self):
    log = self.ctx.get_logger()
    log.info("hello from %s", self.task_name)
    meta = self.ctx.get_metadata()
    other = self.ctx.get_task(meta.uuid)
    self.ctx.sleep(0.01)
    return {
        "uuid": str(self.ctx.task_uuid),
        "meta_status": meta.status,
        "same": str(other.uuid) == str(meta.uuid),
        "config_priority": self.ctx.get_config().DEFAULT_PRIORITY,
        "broker": type(self.ctx.get_component("broker")).__name__,
        "worker": type(self.ctx.get_component("worker")).__name__,
        "app": self.ctx.get_component("app").name,
    }


@app.task(echo=True)
async def actx_tour(self):
    meta = await self.ctx.get_metadata()
    await self.ctx.sleep(0.01)
    other = await self.ctx.get_task(meta.uuid)
    return {"status": meta.status, "same": other.uuid == meta.uuid}


@app.task(echo=True)
def cancels(self, reason):
    self.ctx.cancel(reason)


@app.task(echo=True)
def plugin_fails(self):
    self.ctx.plugin_error(code=7)


@app.task(echo=True)
def subtask_parent(self, n):
    child = self.add_task("add", n, n)
    return str(child.uuid)


@app.task(echo=True)
def subtask_parent_upstream_form(self, n):
    child = self.add_task(n, 1, task_name="add")
    return str(child.uuid)


@app.task(echo=True)
async def async_subtask_parent(self, n):
    child = await self.add_task("add", n, 2)
    return str(child.uuid)


@app.task(retry=5, retry_on_exc=[ZeroDivisionError])
def risky():
    return 1 / 0


@app.task(retry=2, retry_on_exc=[ArithmeticError])
def risky_subclass():
    return 1 / 0


@app.task(retry=2, retry_on_exc=[KeyError])
def not_listed():
    return 1 / 0


@app.task(retry=3)
def cancel_never_retried():
    from qtasks_django import TaskCancelError

    raise TaskCancelError("stop")


@app.task(echo=True, retry=2)
def succeeds_third(self):
    if self.ctx.get_metadata().attempt < 3:
        raise RuntimeError("not yet")
    return "third time"


def handler(value):
    return f"H({value})"


async def async_handler(value):
    return value * 10


@app.task(generate_handler=handler)
def mytask():
    step = yield "INIT"
    return step


@app.task(generate_handler=handler)
def gen_list(n):
    # Not ``yield from range(n)``: the worker sends the handler's output back in, and a
    # range iterator has no send().
    for i in range(n):  # noqa: UP028
        yield i


@app.task(generate_handler=async_handler)
async def agen(n):
    for i in range(n):
        got = yield i
        assert got == i * 10


@app.task(generate_handler=handler)
def gen_fails():
    yield 1
    raise ValueError("midway")


class Double(TaskMiddleware):
    def __call__(self):
        self.task_executor.args = [a * 2 for a in self.task_executor.args]


class Wrap(TaskMiddleware):
    async def __call__(self):
        self.task_executor.result = {"wrapped": self.task_executor.result}


@app.task(middlewares_before=[Double], middlewares_after=[Wrap])
def with_middlewares(a, b):
    return a + b


@app.task(middlewares_before=[Double], middlewares_after=[Wrap])
async def async_with_middlewares(a):
    return a


@app.task(decode=str)
def decoded():
    return 42


@app.task
def not_json():
    return object()


@app.task(max_time=0.5)
async def too_slow():
    await asyncio.sleep(5)
    return "never"


@app.task(max_time=0.5)
def too_slow_sync():
    time.sleep(2)
    return "never"


@app.task
def sleeper(seconds):
    time.sleep(seconds)
    return seconds


@app.task
async def async_sleeper(seconds):
    await asyncio.sleep(seconds)
    return seconds


@app.task
def exits():
    raise SystemExit(3)


@app.task
def raises_base():
    raise KeyboardInterrupt


@app.task
def record_order(label):
    return label


router = SyncRouter()


@router.task()
def routed(x):
    return x + 1


arouter = AsyncRouter()


@arouter.task
async def arouted(x):
    return x * 3


app.include_router(router)
app.include_router(arouter)
from .tasks_admin import *  # noqa: E402,F403
from .tasks_e2e import *  # noqa: E402,F403
from .tasks_faults import *  # noqa: E402,F403
from .tasks_flow import *  # noqa: E402,F403
from .tasks_integration import *  # noqa: E402,F403
from .tasks_schedules import *  # noqa: E402,F403

try:  # Django's Tasks framework: Django 6.0+, or on 5.2 the django-tasks backport
    import qtasks_django.backend.compat  # noqa: F401
except ImportError:
    pass
else:
    from .tasks_django import *  # noqa: F403
