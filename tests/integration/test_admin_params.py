"""The tasks admin never answers a hostile query parameter with a 500.

Any staff user can put anything in a URL. A value the database cannot take (a NUL
character in any text) or Python's date arithmetic cannot (a year of 99999999999) is a
400; a malformed number on the live endpoint (``?after=²``, a digit to ``str.isdigit``
but not to ``int``) a 400; a NUL in a cancel reason a form error. Search finds text that
the arguments' JSON escapes (``C:\\temp``, ``say "hi"``).
"""

from __future__ import annotations

import string
from urllib.parse import quote

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qtasks_django.models import TaskRecord
from qtasks_django.status import TaskStatus
from tests.factories import RegisteredTaskFactory, TaskProgressFactory, TaskRecordFactory, WorkerRecordFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:qtasks_django_taskrecord_changelist")


def live_url(task: TaskRecord) -> str:
    return reverse("admin:qtasks_django_taskrecord_live", args=[task.pk])


@pytest.fixture
def filters_with_choices() -> None:
    """Registered tasks and a worker: the name, queue and tag filters are shown (and applied) only with choices."""
    RegisteredTaskFactory(name="add", queue="emails", tags=["billing"])
    WorkerRecordFactory(queues=["reports"])
    TaskRecordFactory(
        task_name="add", queue="emails", args=["C:\\temp", 'say "hi"'], kwargs={"city": "Zürich"}
    )


@pytest.mark.usefixtures("filters_with_choices")
class TestTheListRefusesWhatTheDatabaseCannotTake:
    @pytest.mark.parametrize(
        "query",
        [
            "task_name=%00",
            "queue=%00",
            "tag=%00",
            "status=%00",
            "status__exact=%00",
            "q=%00",
            "q=a%00b",
            "%00=1",
        ],
    )
    def test_a_nul_character_is_a_400(self, admin_client, query) -> None:
        response = admin_client.get(f"{CHANGELIST}?{query}")

        assert response.status_code == 400
        assert "NUL character" in response.content.decode()

    @pytest.mark.parametrize(
        "query",
        [
            "created_at__year=99999999999",
            "created_at__year=0",
            "created_at__year=2026&created_at__month=13",
            "created_at__year=2026&created_at__month=1&created_at__day=%C2%B2",
            "created_at__year=-1",
        ],
    )
    def test_a_date_link_out_of_range_is_a_400(self, admin_client, query) -> None:
        assert admin_client.get(f"{CHANGELIST}?{query}").status_code == 400

    def test_good_filters_still_filter(self, admin_client) -> None:
        TaskRecordFactory(task_name="other", queue="default")
        response = admin_client.get(
            CHANGELIST, {"task_name": "add", "queue": "emails", "created_at__year": "2026"}
        )

        assert response.status_code == 200
        assert [t.task_name for t in response.context["cl"].result_list] in (["add"], [])


class TestSearchFindsTextTheArgumentsEscape:
    @pytest.mark.parametrize("term", ["C:\\temp", 'say "hi"', "Zürich", "C:\\", '"hi"'])
    def test_a_term_with_backslashes_quotes_or_accents_finds_its_task(self, admin_client, term) -> None:
        wanted = TaskRecordFactory(args=["C:\\temp", 'say "hi"'], kwargs={"city": "Zürich"})
        TaskRecordFactory(args=["C:/temp", "say hi"], kwargs={"city": "Zurich"})

        response = admin_client.get(CHANGELIST, {"q": term})

        assert response.status_code == 200
        assert [t.pk for t in response.context["cl"].result_list] == [wanted.pk]


class TestTheLiveEndpoint:
    @pytest.mark.parametrize(
        "after", ["²", "\u0661", "1.5", "-1", "99999999999999999999999", "2147483648", " 1", "", "0x1"]
    )
    def test_a_malformed_after_is_a_400(self, admin_client, after) -> None:
        response = admin_client.get(live_url(TaskRecordFactory()), {"after": after})

        assert response.status_code == 400
        assert "after must be an integer from 0 to 2147483647" in response.json()["error"]

    def test_after_gives_the_items_that_follow(self, admin_client) -> None:
        task = TaskRecordFactory(status=TaskStatus.PROCESS)
        for seq in (1, 2, 3):
            TaskProgressFactory(task=task, seq=seq)

        assert [i["seq"] for i in admin_client.get(live_url(task), {"after": "1"}).json()["items"]] == [2, 3]
        assert [i["seq"] for i in admin_client.get(live_url(task)).json()["items"]] == [1, 2, 3]


def test_a_cancel_reason_with_a_nul_is_a_form_error(admin_client) -> None:
    waiting = TaskRecordFactory()
    url = reverse("admin:qtasks_django_taskrecord_cancel", args=[waiting.pk])

    response = admin_client.post(url, {"reason": "oops\x00"})

    assert response.status_code == 400
    assert "The reason cannot hold a NUL character." in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.status == TaskStatus.NEW and waiting.cancel_reason in (None, "")


# -- never a 500, whatever the parameters ------------------------------------------------------

#: The parameters the task list reads: search, filters, the date hierarchy, paging, sorting.
LIST_PARAMETERS = [
    "q", "status", "status__exact", "task_name", "queue", "tag", "created_at__gte", "created_at__lt",
    "created_at__year", "created_at__month", "created_at__day", "p", "o", "e", "all", "parent_uuid", "schedule",
]  # fmt: skip
#: Percent-escapes a URL can hold and a form cannot: NUL, invalid UTF-8, a superscript two.
RAW_ESCAPES = ["%00", "%ff", "%fe%ff", "%C2%B2", "%e2%80", "%2e%2e", "%25", "%"]


def hostile_values() -> st.SearchStrategy[str]:
    """A percent-encoded value: hostile escapes, huge or negative numbers, and any text."""
    numbers = st.integers(min_value=-(10**30), max_value=10**30).map(str)
    text = st.text(max_size=30).map(lambda s: quote(s, safe=""))
    pieces = st.one_of(
        st.sampled_from(RAW_ESCAPES), numbers, text, st.sampled_from(["²", "1e999", "nan"]).map(quote)
    )
    return st.lists(pieces, min_size=0, max_size=3).map("".join)


def query_of(names: list[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(st.sampled_from(names), hostile_values()).map(lambda p: f"{p[0]}={p[1]}")
    return st.lists(pair, min_size=1, max_size=4).map("&".join)


PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.usefixtures("filters_with_choices")
@PROPERTY
@given(query=query_of(LIST_PARAMETERS))
def test_the_task_list_never_answers_500(admin_client, query) -> None:
    # The client raises the view's exception: a 500 fails here with its traceback.
    response = admin_client.get(f"{CHANGELIST}?{query}")

    assert response.status_code in (200, 302, 400), query
    if "%00" in query:
        assert response.status_code == 400


@PROPERTY
@given(query=query_of(["after"]), data_visible=st.booleans())
def test_the_live_endpoint_never_answers_500(admin_client, query, data_visible) -> None:
    task = TaskRecord.objects.first() or TaskRecordFactory()
    response = admin_client.get(f"{live_url(task)}?{query}")

    assert response.status_code in (200, 400), query


@PROPERTY
@given(
    query=query_of(["_changelist_filters", "_to_field", "_popup"]), page=st.sampled_from(["change", "cancel"])
)
def test_the_detail_and_cancel_pages_never_answer_500(admin_client, query, page) -> None:
    task = TaskRecord.objects.first() or TaskRecordFactory()
    response = admin_client.get(
        f"{reverse(f'admin:qtasks_django_taskrecord_{page}', args=[task.pk])}?{query}"
    )

    assert response.status_code in (200, 302, 400), query


def test_ascii_letters_are_not_a_hostile_search(admin_client) -> None:
    assert admin_client.get(CHANGELIST, {"q": string.ascii_letters}).status_code == 200
