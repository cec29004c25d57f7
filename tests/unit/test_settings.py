"""``QTASKS`` settings: lazy reading (conf.py) and the system checks that name each mistake (checks.py)."""

from __future__ import annotations

import logging
from dataclasses import fields

import pytest
from django.conf import settings as django_settings
from django.core.checks import Error, Warning, run_checks
from django.test import override_settings

from qtasks_django import QueueTasks
from qtasks_django.checks import check_settings
from qtasks_django.conf import SETTING_BOUNDS, Bounds, QTasksSettings, settings
from qtasks_django.limits import DURATION_MAX

# -- conf.py ------------------------------------------------------------------------------------------


def test_settings_read_the_qtasks_dict_of_the_project() -> None:
    assert settings.POLL_INTERVAL == django_settings.QTASKS["POLL_INTERVAL"] == 0.2
    assert settings.LEASE_TIMEOUT == 5


def test_keys_not_given_take_their_defaults() -> None:
    with override_settings(QTASKS={}):
        assert settings.load() == QTasksSettings()
        assert settings.DEFAULT_PRIORITY == 0
        assert settings.APP == "qtasks_django.app"
        assert settings.RESULT_STATUSES_END == ("success", "error", "cancel")


def test_override_settings_is_seen_and_undone() -> None:
    with override_settings(QTASKS={"POLL_INTERVAL": 3, "DEFAULT_PRIORITY": 9}):
        assert settings.POLL_INTERVAL == 3
        assert settings.DEFAULT_PRIORITY == 9
        assert QueueTasks("unit").config.POLL_INTERVAL == 3
    assert settings.POLL_INTERVAL == 0.2
    assert settings.DEFAULT_PRIORITY == 0


def test_missing_or_wrong_type_qtasks_falls_back_to_defaults() -> None:
    # A wrong type is reported by the system checks (E001), not raised on every read.
    with override_settings(QTASKS=None):
        assert settings.load() == QTasksSettings()
    with override_settings(QTASKS=["POLL_INTERVAL"]):
        assert settings.load() == QTasksSettings()


def test_unknown_keys_are_kept_in_extra() -> None:
    with override_settings(QTASKS={"POLL_INTERVAL": 2, "POLL_INTERVALL": 5, "custom": {"a": 1}}):
        assert settings.POLL_INTERVAL == 2
        assert settings.extra == {"POLL_INTERVALL": 5, "custom": {"a": 1}}
        assert not hasattr(settings.load(), "POLL_INTERVALL")


def test_lists_become_tuples() -> None:
    with override_settings(
        QTASKS={
            "MIDDLEWARES_BEFORE": ["a.B"],
            "MIDDLEWARES_AFTER": ["c.D"],
            "RESULT_STATUSES_END": ["success"],
        }
    ):
        assert settings.MIDDLEWARES_BEFORE == ("a.B",)
        assert settings.MIDDLEWARES_AFTER == ("c.D",)
        assert settings.RESULT_STATUSES_END == ("success",)


def test_a_number_out_of_bounds_is_never_handed_out(caplog) -> None:
    # Tasks are declared while Django loads its apps, before the checks run: a bad
    # DEFAULT_PRIORITY must not fail there, blaming the first task, but reach the checks.
    with override_settings(QTASKS={"DEFAULT_PRIORITY": 1.5, "LEASE_TIMEOUT": float("inf")}):
        with caplog.at_level(logging.WARNING, logger="qtasks_django.conf"):
            assert (settings.DEFAULT_PRIORITY, settings.LEASE_TIMEOUT) == (0, 60.0)
        assert sorted(settings.refused) == ["DEFAULT_PRIORITY", "LEASE_TIMEOUT"]
        assert "QTASKS['DEFAULT_PRIORITY'] must be an integer" in caplog.text
        assert "QTASKS['LEASE_TIMEOUT'] must be a finite number" in caplog.text

        app = QueueTasks("unit-bad-priority")

        @app.task
        def declared() -> None:
            pass

        assert declared.priority == 0
        assert sorted(_ids(django_settings.QTASKS)) == ["qtasks_django.E002", "qtasks_django.E002"]


@pytest.mark.parametrize(
    ("bounds", "value", "accepted"),
    [
        (Bounds(0, 10), 0, True),
        (Bounds(0, 10), 10.0, True),
        (Bounds(0, 10), 10.000001, False),
        (Bounds(0, 10), float("nan"), False),
        (Bounds(0, 10), True, False),
        (Bounds(0, 10, integer=True), 2.0, False),
        (Bounds(0, 10, integer=True), 2, True),
        (Bounds(-5, 5, integer=True), -5, True),
        (Bounds(-5, 5, integer=True), -6, False),
        (Bounds(0, 10), "5", False),
    ],
    ids=repr,
)
def test_bounds_accept_only_finite_numbers_of_the_right_kind_in_range(bounds, value, accepted) -> None:
    assert (bounds.refuses(value) is None) is accepted


def test_bounds_say_what_they_want() -> None:
    assert Bounds(0.01, DURATION_MAX, unit="seconds").refuses(-1) == (
        "must be a finite number from 0.01 to 315360000 seconds"
    )
    assert Bounds(1, 10_000, integer=True).refuses(1.5) == "must be an integer from 1 to 10000"


def test_other_settings_changes_keep_the_cache() -> None:
    loaded = settings.load()
    with override_settings(DEBUG=True):
        assert settings.load() is loaded


# -- checks.py ------------------------------------------------------------------------------------


def _check(qtasks) -> list:
    with override_settings(QTASKS=qtasks):
        return check_settings()


def _ids(qtasks) -> list[str]:
    return [message.id for message in _check(qtasks)]


def test_the_suite_settings_pass_the_checks() -> None:
    assert check_settings() == []


def test_empty_settings_pass_the_checks() -> None:
    assert _ids({}) == []


def test_a_full_valid_configuration_passes_the_checks() -> None:
    qtasks = {
        "APP": "qtasks_django.app",
        "DEFAULT_PRIORITY": -1,
        "DEFAULT_QUEUE": "default",
        "RESULT_STATUSES_END": ["success", "error"],
        "MAX_PAYLOAD_BYTES": 10_000,
        "NOTIFIER": {"BACKEND": "qtasks_django.notifiers.base.PollingNotifier"},
        "POLL_INTERVAL": 0.5,
        "LEASE_TIMEOUT": 30,
        "HEARTBEAT_INTERVAL": 5,
        "RESCUE_INTERVAL": 10,
        "MAX_RESCUES": 0,
        "RETRY_BACKOFF": 0,
        "RETRY_BACKOFF_MAX": 60,
        "RETRY_JITTER": False,
        "MIDDLEWARES_BEFORE": ["tests.tasks.Double"],
        "MIDDLEWARES_AFTER": ("tests.tasks.Wrap",),
        "DEFAULT_EXECUTOR": "qtasks_django.tasks.executors.TaskExecutor",
        "WORKER_CONCURRENCY": 8,
        "SHUTDOWN_TIMEOUT": 10,
    }
    assert _ids(qtasks) == []


def test_checks_run_under_manage_py_check() -> None:
    with override_settings(QTASKS={"POLL_INTERVAL": -1}):
        messages = run_checks(tags=["qtasks"])
    assert [m.id for m in messages] == ["qtasks_django.E002"]


def test_qtasks_not_a_dict_is_e001() -> None:
    assert _ids(["POLL_INTERVAL", 1]) == ["qtasks_django.E001"]


def test_unknown_key_is_warning_w001_listing_known_keys() -> None:
    messages = _check({"POLL_INTERVALL": 1})
    assert [m.id for m in messages] == ["qtasks_django.W001"]
    assert isinstance(messages[0], Warning)
    assert "'POLL_INTERVALL'" in messages[0].msg
    assert "POLL_INTERVAL" in messages[0].hint


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("POLL_INTERVAL", 0),
        ("POLL_INTERVAL", -1),
        ("RESCUE_INTERVAL", True),
        ("SHUTDOWN_TIMEOUT", None),
        ("RETRY_BACKOFF", -0.5),
        ("RETRY_BACKOFF_MAX", "10"),
        ("MAX_PAYLOAD_BYTES", 0),
        ("MAX_PAYLOAD_BYTES", 1.5),
        ("WORKER_CONCURRENCY", -2),
        ("MAX_RESCUES", "3"),
        ("DEFAULT_PRIORITY", True),
        ("DEFAULT_PRIORITY", 1.0),
    ],
    ids=lambda v: repr(v) if not isinstance(v, str) or not v.isupper() else v,
)
def test_wrong_number_is_e002_naming_key_and_value(key, value) -> None:
    messages = _check({key: value})
    assert [m.id for m in messages] == ["qtasks_django.E002"]
    assert isinstance(messages[0], Error)
    assert f"QTASKS[{key!r}]" in messages[0].msg
    assert repr(value) in messages[0].msg


#: Every numeric setting, with values each must refuse: not finite, of the wrong type, or
#: out of range (huge ones overflow timedelta, sleeps or the database's integer column).
HOSTILE_NUMBERS = [float("nan"), float("inf"), float("-inf"), True, False, "1", None, [1], 10**20, -(10**20)]
NUMERIC_SETTINGS = sorted(SETTING_BOUNDS)


@pytest.mark.parametrize("value", HOSTILE_NUMBERS, ids=repr)
@pytest.mark.parametrize("key", NUMERIC_SETTINGS)
def test_every_numeric_setting_refuses_hostile_values_with_e002(key, value) -> None:
    messages = _check({key: value})
    assert [m.id for m in messages] == ["qtasks_django.E002"]
    assert f"QTASKS[{key!r}] must be" in messages[0].msg and repr(value) in messages[0].msg


@pytest.mark.parametrize(
    ("key", "refused", "accepted"),
    [
        ("DEFAULT_PRIORITY", [1.5, 2**31, -(2**31) - 1], [-(2**31), 2**31 - 1, 0]),
        ("MAX_PAYLOAD_BYTES", [0, -1, 2**30 + 1, 1e6], [1, 2**30]),
        ("POLL_INTERVAL", [0, 0.001, -1, DURATION_MAX + 1], [0.01, 1, DURATION_MAX]),
        ("LEASE_TIMEOUT", [0, DURATION_MAX * 2], [30, DURATION_MAX]),
        ("HEARTBEAT_INTERVAL", [0, -5], [0.5]),
        ("RESCUE_INTERVAL", [0], [0.01, 3600]),
        ("MAX_RESCUES", [-1, 2**31, 3.0], [0, 10]),
        ("RETRY_BACKOFF", [-0.5, DURATION_MAX + 1], [0, 2.5]),
        ("RETRY_BACKOFF_MAX", [-1, 1e300], [0, 300]),
        ("WORKER_CONCURRENCY", [0, 10_001, 4.0], [1, 10_000]),
        ("SHUTDOWN_TIMEOUT", [-1, 1e12], [0, 30]),
        ("CHILD_MAX_TASKS", [-1, 2**31, 5.5], [0, 5000]),
        ("CANCEL_GRACE", [-0.1, 1e10], [0, 5]),
        ("PRUNE_AFTER", [0, 0.5, 1e10], [1, 7 * 86400, DURATION_MAX]),
    ],
)
def test_each_numeric_setting_has_its_documented_range(key, refused, accepted) -> None:
    extra = {"LEASE_TIMEOUT": 10**6} if key == "HEARTBEAT_INTERVAL" else {}
    for value in refused:
        assert _ids({key: value}) == ["qtasks_django.E002"], value
    for value in accepted:
        assert _ids({key: value, **extra}) == [], value


def test_the_table_of_bounds_covers_every_numeric_setting() -> None:
    numeric = {f.name for f in fields(QTasksSettings) if f.type in ("int", "float")}
    assert numeric == set(SETTING_BOUNDS)


@pytest.mark.parametrize("key", ["HEARTBEAT_INTERVAL", "LEASE_TIMEOUT"])
@pytest.mark.parametrize("value", ["10", None, float("nan"), float("inf")], ids=repr)
def test_non_number_lease_settings_are_e002_not_a_crash(key, value) -> None:
    assert _ids({key: value}) == ["qtasks_django.E002"]


@pytest.mark.parametrize(
    ("heartbeat", "lease"), [(5, 5), (10, 5), (70, None)], ids=["equal", "longer", "default-lease"]
)
def test_heartbeat_not_shorter_than_lease_is_e003(heartbeat, lease) -> None:
    qtasks = {"HEARTBEAT_INTERVAL": heartbeat} | ({"LEASE_TIMEOUT": lease} if lease else {})
    assert _ids(qtasks) == ["qtasks_django.E003"]


@pytest.mark.parametrize("value", [["done"], [], "success", ("success", "retry", "nope")], ids=repr)
def test_bad_result_statuses_end_is_e004(value) -> None:
    assert _ids({"RESULT_STATUSES_END": value}) == ["qtasks_django.E004"]


@pytest.mark.parametrize(
    ("qtasks", "key"),
    [
        ({"APP": "tests.no_such_module.app"}, "APP"),
        ({"APP": "nodots"}, "APP"),
        ({"DEFAULT_EXECUTOR": "qtasks_django.tasks.executors.NoSuchExecutor"}, "DEFAULT_EXECUTOR"),
        ({"MIDDLEWARES_BEFORE": ["tests.tasks.NoSuchMiddleware"]}, "MIDDLEWARES_BEFORE"),
        ({"MIDDLEWARES_AFTER": ["tests.tasks.Wrap", "no.such.Middleware"]}, "MIDDLEWARES_AFTER"),
        ({"MIDDLEWARES_BEFORE": "tests.tasks.Double"}, "MIDDLEWARES_BEFORE"),
    ],
    ids=["app-module", "app-no-dots", "executor", "before", "after", "before-not-a-list"],
)
def test_dotted_path_that_does_not_import_is_e005(qtasks, key) -> None:
    messages = _check(qtasks)
    assert [m.id for m in messages] == ["qtasks_django.E005"]
    assert f"QTASKS[{key!r}]" in messages[0].msg


@pytest.mark.parametrize(
    ("qtasks", "key"),
    [
        ({"APP": "qtasks_django.conf.settings"}, "APP"),
        ({"APP": "qtasks_django.QueueTasks"}, "APP"),
        ({"DEFAULT_EXECUTOR": "qtasks_django.TaskMiddleware"}, "DEFAULT_EXECUTOR"),
        ({"MIDDLEWARES_BEFORE": ["qtasks_django.tasks.executors.TaskExecutor"]}, "MIDDLEWARES_BEFORE"),
        ({"MIDDLEWARES_AFTER": ["tests.tasks.handler"]}, "MIDDLEWARES_AFTER"),
    ],
    ids=["app-not-an-app", "app-the-class", "executor", "before", "after-a-function"],
)
def test_dotted_path_to_the_wrong_kind_of_object_is_e006(qtasks, key) -> None:
    messages = _check(qtasks)
    assert [m.id for m in messages] == ["qtasks_django.E006"]
    assert f"QTASKS[{key!r}]" in messages[0].msg


@pytest.mark.parametrize(
    "qtasks",
    [{"APP": None}, {"APP": 5}, {"MIDDLEWARES_BEFORE": [123]}, {"DEFAULT_EXECUTOR": None}],
    ids=["app-none", "app-int", "middleware-int", "executor-none"],
)
def test_dotted_path_that_is_not_a_string_is_e005_not_a_crash(qtasks) -> None:
    assert _ids(qtasks) == ["qtasks_django.E005"]


def test_every_bad_dotted_path_is_reported_at_once() -> None:
    messages = _check({"APP": "tests.no_such_module.app", "MIDDLEWARES_BEFORE": "tests.tasks.Double"})
    assert sorted(m.msg.split(":")[0] for m in messages) == [
        "QTASKS['APP']",
        "QTASKS['MIDDLEWARES_BEFORE'] must be a list of dotted paths",
    ]


@pytest.mark.parametrize(
    "notifier",
    [
        "qtasks_django.notifiers.redis.RedisNotifier",
        {"OPTIONS": {"url": "redis://localhost"}},
        {"BACKEND": 5},
        {"BACKEND": "qtasks_django.notifiers.NoSuchNotifier"},
        {"BACKEND": "builtins.dict"},
        {"BACKEND": "qtasks_django.tasks.app.QueueTasks"},
    ],
    ids=[
        "a-string",
        "no-backend",
        "backend-not-a-string",
        "does-not-import",
        "not-a-notifier",
        "bad-signature",
    ],
)
def test_bad_notifier_is_e007(notifier) -> None:
    messages = _check({"NOTIFIER": notifier})
    assert [m.id for m in messages] == ["qtasks_django.E007"]
    assert "QTASKS['NOTIFIER']" in messages[0].msg


def test_notifier_options_not_a_dict_is_e007_not_a_crash() -> None:
    notifier = {"BACKEND": "qtasks_django.notifiers.base.PollingNotifier", "OPTIONS": "redis://localhost"}
    assert _ids({"NOTIFIER": notifier}) == ["qtasks_django.E007"]


@pytest.mark.parametrize("options", [{}, {"url": None}, {"prefix": "x:"}], ids=repr)
def test_redis_notifier_without_a_url_is_e010(options) -> None:
    notifier = {"BACKEND": "qtasks_django.notifiers.redis.RedisNotifier", "OPTIONS": options}
    messages = _check({"NOTIFIER": notifier})
    assert [m.id for m in messages] == ["qtasks_django.E010"]
    assert "url" in messages[0].msg


def test_redis_notifier_with_a_url_passes() -> None:
    # Checks build the notifier but never connect to Redis.
    notifier = {
        "BACKEND": "qtasks_django.notifiers.redis.RedisNotifier",
        "OPTIONS": {"url": "redis://192.0.2.1:1/0"},
    }
    assert _ids({"NOTIFIER": notifier}) == []


def test_several_mistakes_are_all_reported() -> None:
    ids = _ids({"POLL_INTERVAL": 0, "HEARTBEAT_INTERVAL": 9, "LEASE_TIMEOUT": 3, "NOPE": 1, "APP": "x.y"})
    assert sorted(ids) == [
        "qtasks_django.E002",
        "qtasks_django.E003",
        "qtasks_django.E005",
        "qtasks_django.W001",
    ]
