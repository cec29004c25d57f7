"""Tasks written against Django's Tasks framework (``django.tasks``), run by our backend.

``task`` is Django's decorator (the backport's on Django 5.2), through the backend's compat module.
"""

from __future__ import annotations

import asyncio
import time

import django

from qtasks_django.backend import task as qtasks_task
from qtasks_django.backend.compat import task

_PASSES_OPTIONS = django.VERSION >= (6, 1) or django.VERSION < (6, 0)  # 5.2: the backport does

__all__ = [
    "dj_add",
    "dj_async_double",
    "dj_by_account",
    "dj_context",
    "dj_email",
    "dj_fails",
    "dj_flaky",
    "dj_flaky_61",
    "dj_too_slow",
    "dj_unique",
    "dj_urgent",
]


@task
def dj_add(a, b):
    return a + b


@task
async def dj_async_double(x):
    await asyncio.sleep(0)
    return {"double": x * 2, "on_loop": asyncio.get_running_loop().is_running()}


@task
def dj_fails(message):
    raise ValueError(message)


@task(priority=10, queue_name="django_emails")
def dj_email(address):
    return f"sent to {address}"


@task(priority=90)
def dj_urgent(label):
    return label


@qtasks_task(max_time=0.5)
def dj_too_slow(seconds):
    """A sync task past its hard limit: its task process is killed."""
    time.sleep(seconds)


@task(takes_context=True)
def dj_context(context, x):
    result = context.task_result
    return {"attempt": context.attempt, "id": result.id, "status": result.status, "x": x}


@qtasks_task(takes_context=True, retry=2, retry_on_exc=[ValueError], tags=["django"])
def dj_flaky(context, succeed_on):
    """Fail until attempt ``succeed_on``; report what the context saw on the last one."""
    if context.attempt < succeed_on:
        raise ValueError(f"attempt {context.attempt} fails")
    result = context.task_result
    return {"attempt": context.attempt, "errors": len(result.errors), "id": result.id}


@qtasks_task(unique=True)
def dj_unique(tenant_id, fail=False):
    """One waiting-or-running task per call's arguments (``f(7)`` is ``f(tenant_id=7)``)."""
    if fail:
        raise ValueError(f"tenant {tenant_id} fails")
    return tenant_id


@qtasks_task(
    takes_context=True,
    concurrency_limit=1,
    concurrency_key="acct:{account_id}",
    rate_limit="100/m",
    rate_key=lambda account_id: f"partner:{account_id}",
)
def dj_by_account(context, account_id):
    """Limited per account: the keys name the caller's argument, not the context."""
    return {"attempt": context.attempt, "account_id": account_id}


async def _flaky_61(context):
    """Fail once, then succeed."""
    if context.attempt == 1:
        raise KeyError("first")
    return context.attempt


# Django 6.1 (and the backport) pass QTasks' options through ``@task`` (the backend's
# ``task_class``); Django 6.0 does not.
_flaky_61.__name__ = _flaky_61.__qualname__ = "dj_flaky_61"
dj_flaky_61 = task(takes_context=True, retry=1, max_time=30)(_flaky_61) if _PASSES_OPTIONS else None
