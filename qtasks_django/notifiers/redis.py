"""Redis pub/sub wake-ups (``pip install qtasks-django[redis]``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured

from .base import BaseNotifier, ReconnectingListener
from .outages import Outage, outage_of


def _redis_module() -> Any:
    try:
        # An optional dependency (the "redis" extra): imported only when configured.
        import redis
    except ImportError as exc:
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

    @property
    def outage(self) -> Outage:
        """Publishing failures to this Redis, shared by every notifier of this process that uses it."""
        return outage_of(f"Redis at {_without_password(self.options.get('url', ''))}")

    def send(self, channel: str, payload: str) -> None:
        try:
            client = self._client()
            try:
                client.publish(self.prefix + channel, payload)
            finally:
                client.close()
        except Exception as exc:  # Redis is an accelerator: never fail the caller
            self.outage.failed(exc)
        else:
            self.outage.succeeded()

    def listen(self, channels: Iterable[str]) -> RedisListener:
        return RedisListener(channels, notifier=self)

    def describe(self) -> str:
        return f"RedisNotifier({_without_password(self.options.get('url', ''))})"


class RedisListener(ReconnectingListener):
    service = "Redis"

    def __init__(self, channels: Iterable[str], *, notifier: RedisNotifier) -> None:
        self._notifier = notifier
        self._client: Any = None
        self._pubsub: Any = None
        super().__init__(channels)

    def _connect(self) -> None:
        self._client = self._notifier._client()
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(*[self._notifier.prefix + c for c in self.channels])

    def _receive(self, timeout: float) -> list[tuple[str, str]]:
        received = []
        message = self._pubsub.get_message(timeout=timeout)
        while message is not None:
            channel = _text(message["channel"]).removeprefix(self._notifier.prefix)
            received.append((channel, _text(message["data"])))
            message = self._pubsub.get_message(timeout=0)
        return received

    def _drop(self) -> None:
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        for resource in (pubsub, client):
            if resource is not None:
                resource.close()


def _without_password(url: str) -> str:
    """Return ``url`` with any password masked, fit for banners and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
