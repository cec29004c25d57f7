"""The tasks list's filter for new tasks: waiting (due now) or delayed (their eta ahead).

The dashboard's "waiting" and "delayed" tiles lead here. Both are ``status = 'new'``
plus a condition on ``eta``, so the list walks the ``(status, created_at)`` index in
display order and checks each new row's eta on the way: new rows are the queue's
backlog, a small part of a table of finished tasks.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ..status import TaskStatus

WAITING = "now"
DELAYED = "later"


class DueFilter(admin.SimpleListFilter):
    """New tasks a worker may claim now, or those whose eta is still ahead."""

    title = "waiting or delayed"
    parameter_name = "due"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(WAITING, "waiting (due now)"), (DELAYED, "delayed (eta ahead)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == WAITING:
            return queryset.filter(status=TaskStatus.NEW, eta__lte=now)
        if self.value() == DELAYED:
            return queryset.filter(status=TaskStatus.NEW, eta__gt=now)
        return queryset
