"""What the admin pages share: read-only model admins, permissions and escaped rendering.

Every value from a task (arguments, results, tracebacks, names) reaches the page through
``format_html`` or the template engine, so it is escaped; nothing from the data is ever
marked safe.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .params import refused_parameter

APP_LABEL = "qtasks_django"

#: What a user without the ``view_task_data`` permission sees in place of a task's data.
HIDDEN = format_html(
    '<span class="qtasks-hidden" title="{}">hidden</span>', "needs the permission to view task data"
)


def has_task_permission(request: HttpRequest, codename: str) -> bool:
    """Whether the user holds ``qtasks_django.<codename>`` (a superuser holds every one)."""
    return request.user.has_perm(f"{APP_LABEL}.{codename}")


def can_view_task_data(request: HttpRequest) -> bool:
    """Whether the user may see arguments, results, tracebacks, progress values and logs."""
    return has_task_permission(request, "view_task_data")


class StrictParamsAdmin(admin.ModelAdmin):
    """A model admin whose list refuses, with a 400, parameters the database cannot take."""

    #: The list's parameters that hold a row id (a filter by a foreign key).
    row_id_params: tuple[str, ...] = ()

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        # Django checks ``?_to_field=`` only when it is not empty, then looks the empty
        # name up as a field: FieldDoesNotExist, a 500. Empty means the primary key.
        return super().get_object(request, object_id, from_field or None)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The list, unless its filters, search or date links hold what the database cannot take."""
        problem = refused_parameter(request.GET, date_field=self.date_hierarchy, row_ids=self.row_id_params)
        if problem:
            return HttpResponseBadRequest(problem, content_type="text/plain; charset=utf-8")
        return super().changelist_view(request, extra_context)


class ReadOnlyAdmin(StrictParamsAdmin):
    """Records are written by the queue, the workers and the admin's actions, never by a form."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def pretty_json(value: Any) -> SafeString:
    """``value`` as indented JSON in a ``<pre>``, escaped."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return format_html('<pre class="qtasks-json">{}</pre>', text)


def compact_json(value: Any) -> str:
    """``value`` as one line of JSON (for lists of short values)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def status_badge(status: str, label: str) -> SafeString:
    """A coloured badge for a task status (the colour comes from the status's CSS class)."""
    return format_html('<span class="qtasks-badge qtasks-status-{}">{}</span>', status, label)


def task_change_url(uuid: Any) -> str:
    return reverse(f"admin:{APP_LABEL}_taskrecord_change", args=[str(uuid)])


def tasks_list_link(count: int, **filters: Any) -> SafeString | int:
    """``count`` as a link to the task list filtered by ``filters`` (a plain 0 when there are none)."""
    if not count:
        return 0
    url = f"{reverse(f'admin:{APP_LABEL}_taskrecord_changelist')}?{urlencode(filters)}"
    return format_html('<a href="{}">{}</a>', url, count)


def task_link(uuid: Any, text: str | None = None) -> SafeString:
    """A link to a task's detail page, showing the start of its uuid unless told what to show."""
    return format_html('<a href="{}">{}</a>', task_change_url(uuid), text or str(uuid)[:8])


def format_duration(delta: timedelta | None) -> str:
    """``1.25 s``, ``3 min 4 s``, ``2 h 5 min``; ``-`` for none."""
    if delta is None:
        return "-"
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_time(moment: datetime | None, *, milliseconds: bool = False) -> str:
    """``2026-11-22 12:08:01`` in the current time zone; ``-`` for none.

    The admin's one format for a point in time, on every page (compact, sortable by eye).
    Log lines add ``.123``: several are often written within one second.
    """
    if moment is None:
        return "-"
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}" if milliseconds else text


#: A name's pieces, each with the separator that ends it: ``reports.`` ``send_`` ``mail``.
_NAME_PIECES = re.compile(r"[^._/:-]*[._/:-]|[^._/:-]+$")


def breakable(name: str) -> SafeString:
    """``name``, escaped, with a line-break opportunity after each ``.``, ``_``, ``-``, ``/``, ``:``.

    Browsers break ``reports.tasks.send_mail`` nowhere, so a long name would widen its
    column; after a separator it still reads well (unlike ``word-break: break-all``,
    which cuts words anywhere). ``<wbr>`` adds no text: copying the name copies it whole.
    """
    pieces = _NAME_PIECES.findall(name)
    if len(pieces) < 2:
        return format_html("{}", name)
    return format_html("{}{}", format_html_join("", "{}<wbr>", ((p,) for p in pieces[:-1])), pieces[-1])


def format_age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``moment`` was (``5.0 s ago``), or how far ahead (``in 30 s``)."""
    if moment is None:
        return "-"
    delta = (now or timezone.now()) - moment
    if delta.total_seconds() < 0:
        return f"in {format_duration(-delta)}"
    return f"{format_duration(delta)} ago"
