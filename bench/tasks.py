from __future__ import annotations

from qtasks_django import shared_task


@shared_task
def noop(i: int) -> int:
    return i
