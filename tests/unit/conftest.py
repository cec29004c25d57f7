"""Fixtures of the unit tier: fresh registries, and shared tasks removed after each test.

Nothing here touches the database; pytest-django refuses any query in this tier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from qtasks_django import AsyncRouter, BaseRouter, QueueTasks, SyncRouter, shared_task
from qtasks_django.tasks.app import _live_apps, default_app, shared_registry

Declare = Callable[..., Any]


@pytest.fixture(autouse=True)
def _default_app_unchanged() -> Iterator[None]:
    """Fail a unit test that leaves a task behind in the default app or the shared registry."""
    before = (dict(shared_registry._tasks), dict(default_app._tasks), list(default_app.routers))
    yield
    after = (dict(shared_registry._tasks), dict(default_app._tasks), list(default_app.routers))
    assert after == before, "a unit test changed the default app's tasks; use fresh_app or the shared fixture"


@pytest.fixture
def fresh_app() -> Iterator[QueueTasks]:
    """An app of its own, so that tests never register tasks on the default app."""
    app = QueueTasks("unit")
    yield app
    # Shared-task names are checked against every live app; this one is done.
    _live_apps.discard(app)


@pytest.fixture
def shared() -> Iterator[Declare]:
    """``shared_task`` whose tasks leave the global shared registry when the test ends."""
    declared: list[str] = []

    def declare(*args: Any, **options: Any) -> Any:
        outcome = shared_task(*args, **options)
        if callable(outcome) and not hasattr(outcome, "task_name"):
            decorator = outcome

            def wrapped(func: Callable[..., Any]) -> Any:
                task = decorator(func)
                declared.append(task.task_name)
                return task

            return wrapped
        declared.append(outcome.task_name)
        return outcome

    yield declare
    for name in declared:
        shared_registry._tasks.pop(name, None)


@dataclass
class Registry:
    """One kind of registry under test: its ``task`` decorator and the app that sees its tasks."""

    kind: str
    task: Declare
    app: QueueTasks
    router: BaseRouter | None = None

    def publish(self) -> None:
        """Make the declared tasks the app's: include the router (shared and app tasks already are)."""
        if self.router is not None:
            self.app.include_router(self.router)


@pytest.fixture(params=["app", "sync_router", "async_router", "shared_task"])
def registry(request: pytest.FixtureRequest, fresh_app: QueueTasks) -> Registry:
    """Each kind of registry, with the same calling conventions for its decorator."""
    if request.param == "app":
        return Registry("app", fresh_app.task, fresh_app)
    if request.param in ("sync_router", "async_router"):
        router = SyncRouter() if request.param == "sync_router" else AsyncRouter()
        return Registry(request.param, router.task, fresh_app, router)
    return Registry("shared_task", request.getfixturevalue("shared"), fresh_app)
