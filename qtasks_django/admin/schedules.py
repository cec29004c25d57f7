"""The schedules admin: a list of every schedule with how it fires and fared, and a form for admin ones.

A schedule made here (origin ``admin``) is edited here. One declared in code
(``@task(schedule=...)``) or settings (``QTASKS["SCHEDULES"]``) is written by every worker
when it starts, so an edit here would be overwritten: its definition is read-only, and
only pausing, resuming and "run now" apply. It may be deleted once it left the code or
settings (``removed_at``). Every save, pause, resume and delete tells the workers, when it
commits, to read the next firing again, so a change takes effect at once.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from ..models import Schedule, ScheduleOrigin
from ..queue.schedules import ScheduleStore
from ..schedules.declarations import timing_of
from ..schedules.scheduler import Scheduler
from ..serialization import parse_uuid
from ..tasks.app import get_app
from . import schedule_actions, schedule_detail
from .common import APP_LABEL, StrictParamsAdmin, format_time, has_task_permission
from .schedule_columns import (
    ScheduleColumns,
    annotate_schedules,
    describe_timing,
    last_task_cell,
    success_rate_of,
)
from .schedule_form import DEFINITION_FIELDS, TIMING_FIELDS, ScheduleActionForm, ScheduleForm

if TYPE_CHECKING:
    from django_stubs_ext import FieldsetSpec

STATE_FIELDS = (
    "origin_text",
    "timing_text",
    "next_firing_at",
    "last_fired_at_text",
    "last_error_text",
    "updated",
)
RUNS_FIELDS = ("upcoming", "success_rate_text", "history")
RUN_NOW_PERMISSION = "run_schedule_now"


def deletable(schedule: Schedule) -> bool:
    """An admin schedule, or a declared one that left its code or settings (a sync would bring it back)."""
    return schedule.origin == ScheduleOrigin.ADMIN or schedule.removed_at is not None


@admin.register(Schedule)
class ScheduleAdmin(ScheduleColumns, StrictParamsAdmin):
    form = ScheduleForm
    action_form = ScheduleActionForm
    list_display = (
        "name_column",
        "task_column",
        "timing",
        "queue_column",
        "state",
        "next_firing",
        "last_fired",
        "success_rate",
    )
    list_display_links = ("name_column",)
    list_filter = ("enabled", "origin", "task_name")
    search_fields = ("name", "task_name")
    search_help_text = "A schedule's name or its task's name."
    actions = ("pause_selected", "resume_selected", "run_now_selected")
    change_form_template = "admin/qtasks_django/schedule/change_form.html"
    change_list_template = "admin/qtasks_django/schedule/change_list.html"

    class Media:
        css = {"all": ("qtasks_django/admin.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Schedule]:
        return annotate_schedules(super().get_queryset(request))

    # -- the form -------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> FieldsetSpec:
        definition: dict[str, Any] = {"fields": (*DEFINITION_FIELDS, "enabled")}
        if obj is None:
            return [(None, definition)]  # type: ignore[list-item]  # django-stubs wants a _FieldOpts literal
        if obj.origin != ScheduleOrigin.ADMIN:
            definition["description"] = (
                "Declared in code or settings, and written from there by every worker that starts: "
                "change it there. Here it can be paused, resumed and run now."
            )
        return [
            (None, definition),  # type: ignore[list-item]  # as above
            ("State", {"fields": STATE_FIELDS}),
            ("Runs", {"fields": RUNS_FIELDS}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        shown = (*STATE_FIELDS, *RUNS_FIELDS)
        if obj.origin == ScheduleOrigin.ADMIN:
            return shown
        # A schedule gone from code stays paused until declared again (or deleted).
        return (*DEFINITION_FIELDS, *(("enabled",) if obj.removed_at else ()), *shown)

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        """Save; a new, re-timed or re-enabled schedule fires next at its next time after now."""
        changed = set(form.changed_data)
        if obj.enabled and (not change or changed & {*TIMING_FIELDS, "enabled"} or obj.next_fire_at is None):
            obj.next_fire_at = Scheduler(get_app()).first_firing(timing_of(vars(obj)))
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)
        ScheduleStore().notify_changed()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not deletable(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, Any]:
        """The bulk delete's confirmation refuses while a declared schedule is among the rows."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        kept = [s.name for s in objs if not deletable(s)]
        if kept:
            perms_needed = {
                *perms_needed,
                *(f"schedule {name!r} (declared in code or settings)" for name in kept),
            }
        return deleted, counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: Schedule) -> None:
        super().delete_model(request, obj)
        ScheduleStore().notify_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        # The list's rows carry aggregates; delete by primary key.
        Schedule.objects.filter(pk__in=[s.pk for s in queryset if deletable(s)]).delete()
        ScheduleStore().notify_changed()

    # -- the change page's read-only fields ----------------------------------------

    @admin.display(description="origin")
    def origin_text(self, obj: Schedule) -> str:
        text = obj.get_origin_display()
        if obj.removed_at is not None:
            return f"{text}; no longer declared since {format_time(obj.removed_at)} (paused; may be deleted)"
        return text

    @admin.display(description="timing")
    def timing_text(self, obj: Schedule) -> str:
        return describe_timing(obj)

    @admin.display(description="next firing")
    def next_firing_at(self, obj: Schedule) -> str:
        return format_time(obj.next_fire_at) if obj.enabled else "- (paused)"

    @admin.display(description="last fired")
    def last_fired_at_text(self, obj: Schedule) -> SafeString | str:
        return last_task_cell(obj, getattr(obj, "last_status", None))

    @admin.display(description="last error")
    def last_error_text(self, obj: Schedule) -> SafeString | str:
        return format_html('<span class="qtasks-error">{}</span>', obj.last_error) if obj.last_error else "-"

    @admin.display(description="updated")
    def updated(self, obj: Schedule) -> str:
        return format_time(obj.updated_at)

    @admin.display(description="next firings")
    def upcoming(self, obj: Schedule) -> SafeString | str:
        return schedule_detail.render_upcoming(obj)

    @admin.display(description="success rate")
    def success_rate_text(self, obj: Schedule) -> str:
        return success_rate_of(obj).describe()

    @admin.display(description="latest runs")
    def history(self, obj: Schedule) -> SafeString | str:
        return schedule_detail.render_history(obj)

    # -- actions: the list's and the change page's buttons --------------------------

    def has_run_now_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request) and has_task_permission(request, RUN_NOW_PERMISSION)

    @admin.action(description="Pause the selected schedules", permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        schedule_actions.pause(request, queryset)

    @admin.action(description="Resume the selected schedules", permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        schedule_actions.resume(request, queryset)

    @admin.action(description="Run the selected schedules' tasks now", permissions=["run_now"])
    def run_now_selected(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        schedule_actions.run_now(request, queryset, parse_uuid(request.POST.get("nonce", "")))

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view  # staff login, CSRF protection
        views = {"pause": self.pause_view, "resume": self.resume_view, "run-now": self.run_now_view}
        extra = [
            path(
                f"<path:object_id>/{name}/",
                wrap(require_POST(view)),
                name=f"{APP_LABEL}_schedule_{name.replace('-', '_')}",
            )
            for name, view in views.items()
        ]
        return extra + super().get_urls()

    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        schedule = self._changeable(request, object_id)
        schedule_actions.pause(request, Schedule.objects.filter(pk=schedule.pk))
        return self._back_to(schedule)

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        schedule = self._changeable(request, object_id)
        schedule_actions.resume(request, Schedule.objects.filter(pk=schedule.pk))
        return self._back_to(schedule)

    def run_now_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_run_now_permission(request):
            raise PermissionDenied
        schedule = self._schedule(request, object_id)
        schedule_actions.run_now(request, [schedule], parse_uuid(request.POST.get("nonce", "")))
        return self._back_to(schedule)

    def _schedule(self, request: HttpRequest, object_id: str) -> Schedule:
        schedule = self.get_object(request, object_id)
        if schedule is None:
            raise Http404("no such schedule")
        return schedule

    def _changeable(self, request: HttpRequest, object_id: str) -> Schedule:
        schedule = self._schedule(request, object_id)
        if not self.has_change_permission(request, schedule):
            raise PermissionDenied
        return schedule

    def _back_to(self, schedule: Schedule) -> HttpResponse:
        return HttpResponseRedirect(reverse(f"admin:{APP_LABEL}_schedule_change", args=[schedule.pk]))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        schedule = self.get_object(request, object_id)
        extra = {"schedule_buttons": self._buttons(request, schedule) if schedule else []}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def _buttons(self, request: HttpRequest, schedule: Schedule) -> list[dict[str, Any]]:
        """The buttons this user may use on ``schedule`` now."""
        buttons = []
        if self.has_change_permission(request, schedule):
            if schedule.enabled:
                buttons.append(("pause", "Pause", "Stop firing it until resumed."))
            elif schedule.removed_at is None:
                buttons.append(("resume", "Resume", "Fire it again, from its next time after now."))
        if self.has_run_now_permission(request):
            buttons.append(("run_now", "Run now", "Enqueue its task now; its next firing stays."))
        return [
            {
                "name": name,
                "label": label,
                "help": help_text,
                "url": reverse(f"admin:{APP_LABEL}_schedule_{name}", args=[schedule.pk]),
                # Fixed when the page is drawn: the button pressed twice makes one task.
                "nonce": uuid.uuid4() if name == "run_now" else None,
            }
            for name, label, help_text in buttons
        ]
