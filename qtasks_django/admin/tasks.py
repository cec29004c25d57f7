"""The tasks admin: a list that stays fast on millions of rows, a detail page that shows and operates.

The list: a coloured status badge, name, queue, priority, attempt, worker, times and
duration; filters by status, task name, queue, tag and date, each answered by an index;
search by uuid, task name and (for users allowed to see task data) arguments; no full
``COUNT(*)`` of a big table. The detail: why a waiting task is not running and its flow
columns, arguments and result as pretty JSON, traceback, the retry chain, parent and
nested tasks, progress (live while the task runs), log lines, the worker with its
heartbeat and the task's lease, and the actions the user may run. The queues page
(``queues.py``) pauses and resumes queues.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils.safestring import SafeString

from ..models import TaskRecord
from ..serialization import parse_uuid
from . import detail
from .actions import TaskActionViews, available_actions
from .columns import TaskColumns
from .common import APP_LABEL, HIDDEN, ReadOnlyAdmin, can_view_task_data, format_time, pretty_json
from .dashboard import dashboard_view
from .due import DueFilter
from .filters import QueueFilter, ScheduleFilter, TagFilter, TaskNameFilter, search_tasks
from .flow import TaskFlowFields, flow_fieldsets
from .index import link_dashboard_from_index
from .paginator import EstimatedCountPaginator
from .params import SEQUENCE, read_integer
from .queues import QueueViews
from .tracebacks import render_traceback

if TYPE_CHECKING:
    from django_stubs_ext import FieldsetSpec

OVERVIEW_FIELDS = (
    "status_badge",
    "task_name",
    "uuid",
    ("queue", "priority", "tags"),
    ("attempt", "retry"),
    ("created", "eta_time"),
    ("started", "finished", "run_time"),
)
#: A task's data, which may be personal: shown only with the ``view_task_data`` permission.
DATA_FIELDS = ("pretty_args", "pretty_kwargs", "pretty_returning", "traceback_block", "cancel_reason_text")
RELATED_FIELDS = ("retry_chain", "parent", "children")
WORKER_FIELDS = ("worker", "lease", "cancel_requested", "rescues")


def _hidden(description: str) -> Any:
    """A detail field that stands in for a data field the user may not see."""

    @admin.display(description=description)
    def show(self: Any, obj: TaskRecord) -> SafeString:
        return HIDDEN

    return show


@admin.register(TaskRecord)
class TaskRecordAdmin(TaskColumns, TaskFlowFields, ReadOnlyAdmin):
    list_display = (
        "status_badge",
        "task_name_column",
        "queue",
        "priority",
        "attempt",
        "worker_column",
        "created",
        "eta_column",
        "started",
        "finished",
        "run_time",
        "short_uuid",
    )
    list_display_links = ("task_name_column",)
    list_filter = ("status", DueFilter, TaskNameFilter, QueueFilter, TagFilter, ScheduleFilter, "created_at")
    row_id_params = ("schedule",)
    date_hierarchy = "created_at"
    search_fields = ("task_name",)  # shows the search box; get_search_results does the searching
    search_help_text = "A task's uuid, a task name or its start, or text in the arguments."
    ordering = ("-created_at",)
    sortable_by = ("created", "finished")  # the indexed ones
    list_per_page = 50
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would count the table per choice
    change_form_template = "admin/qtasks_django/taskrecord/change_form.html"
    change_list_template = "admin/qtasks_django/taskrecord/change_list.html"

    def __init__(self, model: type[TaskRecord], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        link_dashboard_from_index(admin_site)

    # -- list (the columns are TaskColumns') ----------------------------------------

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[TaskRecord], search_term: str
    ) -> tuple[QuerySet[TaskRecord], bool]:
        """A uuid finds its task (primary key); other text matches task names and, for
        users allowed to see task data, the arguments (which scans: narrow it with filters)."""
        return search_tasks(queryset, search_term, in_arguments=can_view_task_data(request)), False

    # -- detail -----------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> FieldsetSpec:
        data_visible = can_view_task_data(request)
        data = DATA_FIELDS if data_visible else tuple(f"{name}_hidden" for name in DATA_FIELDS)
        progress = ("progress",) if data_visible else ("progress_without_values",)
        log = ("log",) if data_visible else ("log_hidden",)
        # A schedule's task says which schedule made it, for which firing.
        overview = (*OVERVIEW_FIELDS, "fired_by") if obj is not None and obj.schedule_id else OVERVIEW_FIELDS
        return [
            (None, {"fields": overview}),
            *flow_fieldsets(obj),
            ("Arguments and result", {"fields": data}),
            ("Progress", {"fields": progress}),
            ("Attempts and related tasks", {"fields": RELATED_FIELDS}),
            ("Worker", {"fields": WORKER_FIELDS}),
            ("Log", {"fields": log}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        names: list[str] = []
        for _title, options in self.get_fieldsets(request, obj):
            for entry in options["fields"]:
                # An entry is one field's name or a row of names.
                names.extend((entry,) if isinstance(entry, str) else entry)
        return names

    @admin.display(description="args")
    def pretty_args(self, obj: TaskRecord) -> SafeString:
        return pretty_json(obj.args)

    @admin.display(description="kwargs")
    def pretty_kwargs(self, obj: TaskRecord) -> SafeString:
        return pretty_json(obj.kwargs)

    @admin.display(description="result")
    def pretty_returning(self, obj: TaskRecord) -> SafeString:
        return pretty_json(obj.returning)

    @admin.display(description="eta")
    def eta_time(self, obj: TaskRecord) -> str:
        """When the task may start (delayed tasks wait for it)."""
        return format_time(obj.eta)

    @admin.display(description="cancel requested")
    def cancel_requested(self, obj: TaskRecord) -> str:
        return format_time(obj.cancel_requested_at)

    @admin.display(description="traceback")
    def traceback_block(self, obj: TaskRecord) -> SafeString | str:
        return render_traceback(obj.traceback)

    @admin.display(description="cancel reason")
    def cancel_reason_text(self, obj: TaskRecord) -> str:
        return obj.cancel_reason or "-"

    pretty_args_hidden = _hidden("args")
    pretty_kwargs_hidden = _hidden("kwargs")
    pretty_returning_hidden = _hidden("result")
    traceback_block_hidden = _hidden("traceback")
    cancel_reason_text_hidden = _hidden("cancel reason")
    log_hidden = _hidden("log lines")

    @admin.display(description="progress")
    def progress(self, obj: TaskRecord) -> SafeString:
        return self._progress(obj, with_values=True)

    @admin.display(description="progress")
    def progress_without_values(self, obj: TaskRecord) -> SafeString:
        return self._progress(obj, with_values=False)

    def _progress(self, obj: TaskRecord, *, with_values: bool) -> SafeString:
        state = detail.progress_state(obj, with_values=with_values)
        live_url = reverse(f"admin:{APP_LABEL}_taskrecord_live", args=[str(obj.pk)])
        context = {"state": state, "live_url": live_url, "with_values": with_values}
        return render_to_string("admin/qtasks_django/taskrecord/progress.html", context)

    @admin.display(description="schedule")
    def fired_by(self, obj: TaskRecord) -> SafeString | str:
        return detail.render_schedule(obj)

    @admin.display(description="attempts")
    def retry_chain(self, obj: TaskRecord) -> SafeString | str:
        return detail.render_retry_chain(obj)

    @admin.display(description="parent task")
    def parent(self, obj: TaskRecord) -> SafeString | str:
        return detail.render_parent(obj)

    @admin.display(description="nested tasks")
    def children(self, obj: TaskRecord) -> SafeString | str:
        return detail.render_children(obj)

    @admin.display(description="worker")
    def worker(self, obj: TaskRecord) -> SafeString | str:
        return detail.render_worker(obj)

    @admin.display(description="lease")
    def lease(self, obj: TaskRecord) -> str:
        return detail.render_lease(obj)

    @admin.display(description="log lines")
    def log(self, obj: TaskRecord) -> SafeString | str:
        return detail.render_log(obj)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        record = self.get_object_for_action(object_id)
        extra = {"task_actions": available_actions(request, record) if record else []}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    # -- extra pages --------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        extra = [
            path("dashboard/", wrap(self.dashboard), name=f"{APP_LABEL}_taskrecord_dashboard"),
            path("<path:object_id>/live/", wrap(self.live), name=f"{APP_LABEL}_taskrecord_live"),
            *QueueViews(self).urls(),
            *TaskActionViews(self).urls(),
        ]
        return extra + super().get_urls()

    def dashboard(self, request: HttpRequest) -> HttpResponse:
        return dashboard_view(self, request)

    def live(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The task's status and its progress items after ``?after=<seq>``, as JSON."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "forbidden"}, status=403)
        record = self.get_object_for_action(object_id)
        if record is None:
            return JsonResponse({"error": "not found"}, status=404)
        after = read_integer(request.GET.get("after", "0"), SEQUENCE)
        if after is None:
            return JsonResponse({"error": f"after must be {SEQUENCE.describe()}"}, status=400)
        return JsonResponse(
            detail.progress_state(record, after_seq=after, with_values=can_view_task_data(request))
        )

    def get_object_for_action(self, object_id: str) -> TaskRecord | None:
        key = parse_uuid(object_id)
        return TaskRecord.objects.filter(pk=key).first() if key else None
