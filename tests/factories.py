"""factory-boy factories for qtasks_django's rows.

Defaults describe an ordinary, freshly enqueued task of ``add`` (see tests/tasks.py), so
``TaskRecordFactory()`` is a row a worker can claim and run at once, and
``TaskRecordFactory(task_name="add", args=[1, 2])`` reads like the call it stands for.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import factory
from django.utils import timezone

from qtasks_django.models import (
    RegisteredTask,
    Schedule,
    ScheduleOrigin,
    TaskLog,
    TaskProgress,
    TaskRecord,
    WorkerRecord,
)
from qtasks_django.status import TaskStatus


class TaskRecordFactory(factory.django.DjangoModelFactory):
    """A task row; ``status="new"`` and ``eta`` now unless told otherwise."""

    class Meta:
        model = TaskRecord

    uuid = factory.LazyFunction(uuid.uuid4)
    task_name = "add"
    queue = "default"
    status = TaskStatus.NEW
    priority = 0
    args = factory.LazyFunction(lambda: [1, 2])
    kwargs = factory.LazyFunction(dict)
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyAttribute(lambda o: o.created_at)
    eta = factory.LazyAttribute(lambda o: o.created_at)

    class Params:
        # TaskRecordFactory(running=True, worker_id="w1"): a claimed row with a live lease.
        running = factory.Trait(
            status=TaskStatus.PROCESS,
            worker_id="worker-factory",
            lease_token=factory.LazyFunction(uuid.uuid4),
            lease_expires_at=factory.LazyFunction(lambda: timezone.now() + timedelta(seconds=60)),
            started_at=factory.LazyFunction(timezone.now),
        )
        # TaskRecordFactory(succeeded=True, returning=3): a finished row.
        succeeded = factory.Trait(
            status=TaskStatus.SUCCESS,
            returning=3,
            started_at=factory.LazyFunction(timezone.now),
            finished_at=factory.LazyFunction(timezone.now),
        )


class TaskProgressFactory(factory.django.DjangoModelFactory):
    """One progress item; ``seq`` counts up across the factory's calls."""

    class Meta:
        model = TaskProgress

    task = factory.SubFactory(TaskRecordFactory)
    seq = factory.Sequence(lambda n: n + 1)
    value = factory.LazyAttribute(lambda o: f"item {o.seq}")


class TaskLogFactory(factory.django.DjangoModelFactory):
    """One log line a task wrote through ``ctx.get_logger()``."""

    class Meta:
        model = TaskLog

    task = factory.SubFactory(TaskRecordFactory)
    level = "INFO"
    logger = factory.LazyAttribute(lambda o: f"qtasks_django.tasks.{o.task.task_name}")
    message = factory.Sequence(lambda n: f"log line {n}")


class WorkerRecordFactory(factory.django.DjangoModelFactory):
    """A worker process with a fresh heartbeat."""

    class Meta:
        model = WorkerRecord
        django_get_or_create = ("id",)

    id = factory.Sequence(lambda n: f"host-1234-worker{n}")
    host = "host"
    pid = factory.Sequence(lambda n: 1000 + n)
    queues = factory.LazyFunction(lambda: ["*"])
    concurrency = 4
    started_at = factory.LazyFunction(timezone.now)
    heartbeat_at = factory.LazyFunction(timezone.now)


class RegisteredTaskFactory(factory.django.DjangoModelFactory):
    """The persisted metadata of a registered task (callables as dotted paths)."""

    class Meta:
        model = RegisteredTask
        django_get_or_create = ("name",)
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"registered_{n}")
    func = factory.LazyAttribute(lambda o: f"tests.tasks.{o.name}")
    priority = 0
    queue = "default"
    retry = None
    retry_on_exc = factory.LazyFunction(list)
    extra = factory.LazyFunction(dict)

    @factory.post_generation
    def workers(self, create: bool, extracted: list[WorkerRecord] | None, **kwargs: object) -> None:
        """``RegisteredTaskFactory(workers=[w1, w2])`` links the workers that serve it."""
        if create and extracted:
            self.workers.add(*extracted)


class ScheduleFactory(factory.django.DjangoModelFactory):
    """An admin schedule ``tick`` of ``scheduled_tick`` every 10 minutes, next firing 10 minutes away."""

    class Meta:
        model = Schedule

    name = "tick"
    task_name = "scheduled_tick"
    interval = timedelta(minutes=10)
    timezone = "UTC"
    next_fire_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=10))
    origin = ScheduleOrigin.ADMIN
