"""A Django task in the worker: its ``TaskContext``, and Django's signals from ours.

The worker knows nothing of Django's framework: a Django task's schema names
``DjangoTaskExecutor``, which passes the context, and the receivers here turn the
worker's ``task_started``/``task_finished`` into Django's, sent with the backend's class.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal, receiver

from .. import signals
from ..tasks.executors import TaskExecutor
from .compat import TaskContext, task_backends
from .compat import task_signals as django_signals
from .known import known_tasks

logger = logging.getLogger("qtasks_django.backend")


class DjangoTaskExecutor(TaskExecutor):
    """Run a Django task: with ``takes_context``, its first argument is a ``TaskContext``."""

    async def run_task(self) -> Any:
        if not self.task_func.takes_context:
            return await super().run_task()
        # Read in a worker thread (or right here in a task process): it queries the rows.
        context = await self.run.run_sync(task_context, self.task_func.extra["backend"], self.run.uuid)
        return await self.call(self.task_func.func, context, *self.args, **self.kwargs)


def task_context(alias: str, uuid: Any) -> TaskContext[..., Any]:
    """Return the context of the running attempt ``uuid``: its result, attempts included."""
    return TaskContext(task_result=task_backends[alias].get_result(str(uuid)))


@receiver(signals.task_started, dispatch_uid="qtasks_django.backend.task_started")
def forward_started(sender: str, uuid: Any, **kwargs: Any) -> None:
    """The worker claimed a Django task and is about to run it: Django's ``task_started``."""
    forward(django_signals.task_started, sender, uuid)


@receiver(signals.task_finished, dispatch_uid="qtasks_django.backend.task_finished")
def forward_finished(sender: str, uuid: Any, **kwargs: Any) -> None:
    """A Django task ended (written): Django's ``task_finished``; a retried attempt sends none."""
    forward(django_signals.task_finished, sender, uuid)


def forward(signal: Signal, task_name: str, uuid: Any) -> None:
    """Send Django's ``signal`` for a Django task's row; other tasks are not Django's business."""
    # Only tasks this process declared (it runs or cancels them): a QTasks task's name is
    # never imported to find out, which would cost every task of the worker an import.
    task = known_tasks.get(task_name) if signal.has_listeners() else None
    if task is None:
        return
    backend = task_backends[task.backend]
    result = backend.get_result(str(uuid))
    for receiver_func, response in signal.send_robust(type(backend), task_result=result):
        if isinstance(response, Exception):
            logger.error("%r failed for task %s", receiver_func, uuid, exc_info=response)
