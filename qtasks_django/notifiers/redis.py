"""Redis pub/sub wake-ups (``pip install qtasks-django[redis]``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured

from .base import BaseListener, BaseNotifier

logger = logging.getLogger(__name__)


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as exc:  # optional dependency
        raise ImproperlyConfigured(
            "RedisNotifier needs the redis package: pip install 'qtasks-django[redis]'"
        ) from exc
    return redis


class RedisNotifier(BaseNotifier):
    """Publish after commit; a lost message only delays work until the next poll.

    Options: ``url`` (``redis://127.0.0.1:6379/0``), ``prefix`` (channel prefix).
    """

    supports_listen = True

    def check(self) -> list[CheckMessage]:
        errors: list[CheckMessage] = []
        if not isinstance(self.options.get("url"), str):
            errors.append(Error("RedisNotifier needs OPTIONS['url']", id="qtasks_django.E010"))
        try:
            _redis_module()
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id="qtasks_django.E011"))
        return errors

    @property
    def prefix(self) -> str:
        return self.options.get("prefix", "")

    def _client(self) -> Any:
        return _redis_module().Redis.from_url(
            self.options.get("url", "redis://127.0.0.1:6379/0"), socket_timeout=2, socket_connect_timeout=2
        )

    def send(self, channel: str, payload: str) -> None:
        try:
            client = self._client()
            try:
                client.publish(self.prefix + channel, payload)
            finally:
                client.close()
        except Exception as exc:  # Redis is an accelerator: never fail the caller
            logger.warning("qtasks could not publish to Redis (%s); workers will poll", exc)

    def listen(self, channels: Iterable[str]) -> RedisListener:
        return RedisListener(channels, notifier=self)

    def describe(self) -> str:
        return f"RedisNotifier({_without_password(self.options.get('url', ''))})"


class RedisListener(BaseListener):
    def __init__(self, channels: Iterable[str], *, notifier: RedisNotifier) -> None:
        super().__init__(channels)
        self._notifier = notifier
        self._client: Any = None
        self._pubsub: Any = None
        self._failures = 0
        try:  # subscribe before the caller's first database check
            self._connect()
        except Exception as exc:
            logger.warning("qtasks could not subscribe to Redis (%s); polling until it can", exc)
            self._drop()

    def _connect(self) -> None:
        self._client = self._notifier._client()
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(*[self._notifier.prefix + c for c in self.channels])

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        if self._closed.is_set():
            return []
        deadline = time.monotonic() + timeout
        try:
            if self._pubsub is None:
                self._connect()
                self._failures = 0
            received = []
            message = self._pubsub.get_message(timeout=timeout)
            while message is not None:
                received.append((self._strip(message["channel"]), _text(message["data"])))
                message = self._pubsub.get_message(timeout=0)
            return received
        except Exception as exc:
            if self._closed.is_set():  # closed under our feet during shutdown
                return []  # Redis going away must not kill the worker
            self._failures += 1
            if self._failures in (1, 10) or self._failures % 100 == 0:
                logger.warning("qtasks lost Redis (%s); polling the database until it is back", exc)
            self._drop()
            self._closed.wait(max(0.0, deadline - time.monotonic()))
            return []

    def _strip(self, channel: Any) -> str:
        return _text(channel).removeprefix(self._notifier.prefix)

    def _drop(self) -> None:
        for resource in (self._pubsub, self._client):
            try:
                if resource is not None:
                    resource.close()
            except Exception:
                logger.debug("closing a broken Redis connection failed", exc_info=True)
        self._pubsub = self._client = None

    def close(self) -> None:
        super().close()
        self._drop()


def _without_password(url: str) -> str:
    """Return ``url`` with any password masked, fit for banners and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
