"""System checks for ``settings.QTASKS`` (``manage.py check`` names each mistake)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from django.conf import settings as django_settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.utils.module_loading import import_string

from .conf import QTasksSettings, refused_numbers, settings
from .notifiers import get_notifier
from .notifiers.base import BaseNotifier
from .schedules.checks import schedule_errors
from .status import TaskStatus
from .tasks.app import QueueTasks
from .tasks.executors import BaseTaskExecutor
from .tasks.middleware import TaskMiddleware

_SYNC_POOLS = ("process", "thread")


@register("qtasks")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(django_settings, "QTASKS", {})
    if not isinstance(raw, dict):
        return [Error("settings.QTASKS must be a dict", id="qtasks_django.E001")]
    errors: list[CheckMessage] = []
    known = {f.name for f in fields(QTasksSettings)} - {"extra", "refused"}
    for key in sorted(set(raw) - known):
        errors.append(
            Warning(
                f"QTASKS[{key!r}] is not a known setting",
                hint=f"Known: {', '.join(sorted(known))}",
                id="qtasks_django.W001",
            )
        )
    refused = refused_numbers(raw)
    errors += [Error(problem, id="qtasks_django.E002") for problem in refused.values()]
    errors += _plain_types(raw)
    errors += _statuses(raw)
    errors += _imports(raw)
    errors += _notifier(raw)
    errors += schedule_errors()
    heartbeat = raw.get("HEARTBEAT_INTERVAL", settings.HEARTBEAT_INTERVAL)
    lease = raw.get("LEASE_TIMEOUT", settings.LEASE_TIMEOUT)
    if not {"HEARTBEAT_INTERVAL", "LEASE_TIMEOUT"} & set(refused) and heartbeat >= lease:
        errors.append(
            Error(
                "QTASKS['HEARTBEAT_INTERVAL'] must be shorter than LEASE_TIMEOUT, or leases expire under running tasks",
                id="qtasks_django.E003",
            )
        )
    return errors


def _plain_types(raw: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if not isinstance(raw.get("RETRY_JITTER", True), bool):
        errors.append(Error("QTASKS['RETRY_JITTER'] must be True or False", id="qtasks_django.E002"))
    queue = raw.get("DEFAULT_QUEUE", "default")
    if not isinstance(queue, str) or not queue:
        errors.append(Error("QTASKS['DEFAULT_QUEUE'] must be a non-empty string", id="qtasks_django.E002"))
    if raw.get("SYNC_POOL", settings.SYNC_POOL) not in _SYNC_POOLS:
        errors.append(
            Error(
                f"QTASKS['SYNC_POOL'] must be one of {_SYNC_POOLS}, got {raw['SYNC_POOL']!r}",
                id="qtasks_django.E012",
            )
        )
    return errors


def _statuses(raw: dict[str, Any]) -> list[CheckMessage]:
    value = raw.get("RESULT_STATUSES_END", settings.RESULT_STATUSES_END)
    if isinstance(value, list | tuple) and value and all(v in TaskStatus.values for v in value):
        return []
    return [
        Error(
            f"QTASKS['RESULT_STATUSES_END'] must list statuses among {TaskStatus.values}, got {value!r}",
            id="qtasks_django.E004",
        )
    ]


def _imports(raw: dict[str, Any]) -> list[CheckMessage]:
    # (setting, dotted path, the class it must be or subclass, whether an instance is wanted)
    wanted: list[tuple[str, Any, type, bool]] = [("APP", raw.get("APP", settings.APP), QueueTasks, True)]
    wanted.append(
        ("DEFAULT_EXECUTOR", raw.get("DEFAULT_EXECUTOR", settings.DEFAULT_EXECUTOR), BaseTaskExecutor, False)
    )
    errors: list[CheckMessage] = []
    for key in ("MIDDLEWARES_BEFORE", "MIDDLEWARES_AFTER"):
        paths = raw.get(key, ())
        if isinstance(paths, list | tuple):
            wanted += [(key, path, TaskMiddleware, False) for path in paths]
        else:
            errors.append(Error(f"QTASKS[{key!r}] must be a list of dotted paths", id="qtasks_django.E005"))
    for key, path, base, instance in wanted:
        if not isinstance(path, str):
            errors.append(
                Error(f"QTASKS[{key!r}]: {path!r} is not a dotted path string", id="qtasks_django.E005")
            )
            continue
        try:
            obj = import_string(path)
        except ImportError as exc:
            errors.append(Error(f"QTASKS[{key!r}]: cannot import {path!r}: {exc}", id="qtasks_django.E005"))
            continue
        ok = isinstance(obj, base) if instance else isinstance(obj, type) and issubclass(obj, base)
        if not ok:
            errors.append(
                Error(
                    f"QTASKS[{key!r}]: {path!r} is not a {base.__name__}{'' if instance else ' subclass'}",
                    id="qtasks_django.E006",
                )
            )
    return errors


def _notifier(raw: dict[str, Any]) -> list[CheckMessage]:
    value = raw.get("NOTIFIER")
    if value is None:
        return []
    if not isinstance(value, dict) or not isinstance(value.get("BACKEND"), str):
        return [
            Error("QTASKS['NOTIFIER'] must be a dict with a 'BACKEND' dotted path", id="qtasks_django.E007")
        ]
    try:
        notifier = get_notifier()
    except (ImportError, TypeError, ValueError) as exc:
        return [
            Error(f"QTASKS['NOTIFIER']: cannot build {value['BACKEND']!r}: {exc}", id="qtasks_django.E007")
        ]
    if not isinstance(notifier, BaseNotifier):
        return [
            Error(f"QTASKS['NOTIFIER']: {value['BACKEND']!r} is not a BaseNotifier", id="qtasks_django.E007")
        ]
    return notifier.check()
