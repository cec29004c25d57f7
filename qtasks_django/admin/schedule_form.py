"""The form of an admin schedule, checked as a firing would use it (``check_schedule``).

A cron expression that does not parse, a task this project does not register, arguments
that do not bind to the task's signature, a time zone that does not exist: each is refused
on save with the checker's own message, and nothing is written.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib.admin.helpers import ActionForm

from ..exceptions import InvalidSchedule
from ..models import Schedule
from ..schedules.declarations import check_schedule, default_zone
from ..tasks.app import get_app

#: The fields that say when a schedule fires: a change moves its next firing.
TIMING_FIELDS = ("cron", "interval", "timezone")
#: The fields a schedule's definition is made of (read-only for one declared in code or settings).
DEFINITION_FIELDS = (
    "name",
    "task_name",
    "cron",
    "interval",
    "timezone",
    "args",
    "kwargs",
    "queue",
    "priority",
    "missed_runs",
)


def task_choices(current: str | None) -> list[tuple[str, str]]:
    """The registered task names, and ``current`` even if no longer registered (the check names it)."""
    names = sorted(get_app().tasks)
    if current and current not in names:
        names.insert(0, current)
    return [("", "---------"), *((name, name) for name in names)]


class ScheduleForm(forms.ModelForm):
    """Add or change an admin schedule; ``clean`` checks it as the worker's firing would."""

    task_name = forms.ChoiceField(label="Task", choices=())

    class Meta:
        model = Schedule
        fields = (*DEFINITION_FIELDS, "enabled")
        widgets = {
            "args": forms.Textarea(attrs={"rows": 2, "cols": 60}),
            "kwargs": forms.Textarea(attrs={"rows": 3, "cols": 60}),
        }
        help_texts = {
            "interval": "Or a fixed interval of real time: '00:05:00' is 5 minutes, '1 00:00:00' a day.",
            "args": "A JSON list of positional arguments, e.g. [30].",
            "kwargs": 'A JSON object of keyword arguments, e.g. {"days": 30}.',
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        task_field = self.fields.get("task_name")
        if isinstance(task_field, forms.ChoiceField):
            task_field.choices = task_choices(self.instance.task_name)
        if "timezone" in self.fields:
            self.fields["timezone"].required = False  # empty: the project's zone
            if not self.instance.pk:
                self.fields["timezone"].initial = default_zone()
            self.fields["timezone"].help_text = (
                f"An IANA time zone, e.g. 'Europe/Berlin'; the cron expression reads in it "
                f"(default: {default_zone()}, the project's TIME_ZONE)."
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "task_name" not in self.fields or self.errors:
            return cleaned  # a declared schedule (its definition is read-only), or field errors first
        for name, empty in (("args", []), ("kwargs", {})):
            if cleaned.get(name) is None:
                cleaned[name] = empty
        try:
            # No name given: the message is shown on this schedule's own form.
            timing = check_schedule(get_app(), cleaned)
        except InvalidSchedule as exc:
            raise forms.ValidationError(str(exc)) from None
        # As the worker reads it: the expression spaced once, the zone by its key.
        cleaned.update(cron=timing.cron or "", interval=timing.every, timezone=timing.zone.key)
        return cleaned


class ScheduleActionForm(ActionForm):
    """The list's action form, with a key fixed when the page is drawn.

    "Run now" names each task it makes after it, so the same form submitted twice makes
    the tasks once.
    """

    nonce = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4, required=False, label="")
