"""The worker floor: ``qtasks_worker``'s loop, its slots, task processes, outcome writing.

``Worker`` is the one name most callers need (``from qtasks_django.worker import Worker``
embeds a worker, in a test say); ``docs/architecture.md`` maps the rest.
"""

from __future__ import annotations

from .worker import Worker

__all__ = ["Worker"]
