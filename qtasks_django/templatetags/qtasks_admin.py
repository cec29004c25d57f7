"""Template tags of the qtasks_django admin pages."""

from __future__ import annotations

import datetime
from typing import Any

from django import template
from django.contrib.admin.views.main import ChangeList
from django.db.models import Field, Max, Min
from django.utils import formats, timezone
from django.utils.text import capfirst

from ..admin.index import with_dashboard

register = template.Library()


@register.simple_tag
def qtasks_with_dashboard(app_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The admin index's apps, with the task dashboard as the first row of the QTasks block."""
    return with_dashboard(app_list)


@register.inclusion_tag("admin/date_hierarchy.html")
def qtasks_date_hierarchy(cl: ChangeList) -> dict[str, Any]:
    """Django's date hierarchy, without ``SELECT DISTINCT`` over the rows.

    Django lists the years, months or days that have rows by truncating every row's date;
    on millions of rows that is a scan per page view. Here the choices are the calendar
    between the first and the last matching row, read from the two ends of an index.
    """
    field = cl.date_hierarchy
    if not field:
        return {"show": False}
    year, month, day = (cl.params.get(f"{field}__{part}") for part in ("year", "month", "day"))
    links = _Links(cl, field)
    if year and month and day:
        chosen = datetime.date(int(year), int(month), int(day))
        return links.result(
            back=(
                links.url(year=year, month=month),
                capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            ),
            choices=[(None, capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT")))],
        )
    first, last = _range(cl, field)
    if first is None:
        return {"show": False}
    if not year and first.year == last.year:
        year = first.year
        month = month or (first.month if first.month == last.month else None)
    if year and month:
        days = _days(int(year), int(month), first, last)
        return links.result(
            back=(links.url(year=year), str(year)),
            choices=[
                (
                    links.url(year=year, month=month, day=d.day),
                    capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                )
                for d in days
            ],
        )
    if year:
        months = [datetime.date(int(year), m, 1) for m in _months(int(year), first, last)]
        return links.result(
            back=(links.url(), "All dates"),
            choices=[
                (links.url(year=year, month=m.month), capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")))
                for m in months
            ],
        )
    return links.result(
        back=None, choices=[(links.url(year=y), str(y)) for y in range(first.year, last.year + 1)]
    )


def _range(cl: ChangeList, field: str) -> tuple[Any, Any]:
    bounds = cl.queryset.aggregate(first=Min(field), last=Max(field))
    first, last = bounds["first"], bounds["last"]
    if first is None or last is None:
        return None, None
    if timezone.is_aware(first):
        first, last = timezone.localtime(first), timezone.localtime(last)
    return first.date(), last.date()


def _months(year: int, first: datetime.date, last: datetime.date) -> range:
    start = first.month if first.year == year else 1
    end = last.month if last.year == year else 12
    return range(start, end + 1)


def _days(year: int, month: int, first: datetime.date, last: datetime.date) -> list[datetime.date]:
    day = datetime.date(year, month, 1)
    days = []
    while day.month == month:
        if first <= day <= last:
            days.append(day)
        day += datetime.timedelta(days=1)
    return days


class _Links:
    def __init__(self, cl: ChangeList, field: str) -> None:
        self.cl = cl
        self.field = field

    def url(self, **parts: Any) -> str:
        params = {f"{self.field}__{name}": str(value) for name, value in parts.items()}
        return self.cl.get_query_string(params, [f"{self.field}__"])

    def result(
        self, *, back: tuple[str, str] | None, choices: list[tuple[str | None, str]]
    ) -> dict[str, Any]:
        field = self.cl.model._meta.get_field(self.field)
        # ``date_hierarchy`` names a date field of the model (the admin checks it), never a relation.
        assert isinstance(field, Field)
        field_name = field.verbose_name
        return {
            "show": True,
            "back": {"link": back[0], "title": back[1]} if back else None,
            "choices": [{"link": link, "title": title} for link, title in choices],
            "field_name": field_name,
        }
