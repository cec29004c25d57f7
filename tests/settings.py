"""Django settings for the test suite.

The environment chooses the servers (see scripts/test.sh):

* ``DATABASE_URL`` (django-environ syntax). Default: SQLite in a file under the temp dir.
  On SQLite the test database is a file too (``TEST.NAME``), so ``qtasks_worker``
  subprocesses started by e2e tests can open the very database pytest set up.
* ``REDIS_URL``: optional; tests marked ``redis`` use it (tests/conftest.py).
* ``QTASKS_TEST_NOTIFIER=redis``: send wake-ups through ``RedisNotifier`` on ``REDIS_URL``
  instead of the notifier the database vendor gets by default.
* ``QTASKS_TEST_LISTEN_DATABASE``: for a worker behind PgBouncer (``DATABASE_URL`` names
  the pooler; tests/e2e/test_pgbouncer.py): the URL of the same database reached directly,
  which the PostgreSQL notifier LISTENs through (alias ``direct``), or ``none`` for no
  LISTEN at all (workers poll). Either way server-side cursors are off, as a pooler needs.
* ``QTASKS_TEST_SCHEDULES``: ``QTASKS["SCHEDULES"]`` as JSON (tests/e2e/test_schedules.py
  gives it to the workers it starts). Default: none.
* ``QTASKS_TEST_QTASKS``: more ``QTASKS`` keys as JSON, for the workers an e2e test starts
  (tests/e2e/test_task_processes.py: a short ``TASK_PROCESS_IDLE_TIMEOUT``). Default: none.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

BASE_DIR = Path(__file__).resolve().parent.parent
TEST_TMP_DIR = Path(
    env.str("QTASKS_TEST_TMP_DIR", default=str(Path(tempfile.gettempdir()) / "qtasks_django_tests"))
)
TEST_TMP_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = "qtasks-django-tests-not-secret"  # test-only key
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "qtasks_django",
    "tests",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# An empty DATABASE_URL means "unset" (the SQLite default), as in `DATABASE_URL= pytest`.
_database_url = env.str("DATABASE_URL", default="") or f"sqlite:///{TEST_TMP_DIR / 'db.sqlite3'}"
DATABASES = {"default": env.db_url_config(_database_url)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _name = DATABASES["default"].get("NAME") or ":memory:"
    if _name == ":memory:":
        _name = str(TEST_TMP_DIR / "db.sqlite3")
        DATABASES["default"]["NAME"] = _name
    DATABASES["default"]["TEST"] = {"NAME": str(Path(_name).with_name(f"test_{Path(_name).name}"))}
    # Worker subprocesses write to the same file: wait for locks instead of failing at
    # once, and take the write lock at BEGIN so two writers never deadlock on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        }
    )

REDIS_URL = env.str("REDIS_URL", default="") or None

QTASKS = {
    "RETRY_BACKOFF": 0,
    "POLL_INTERVAL": 0.2,
    "HEARTBEAT_INTERVAL": 1,
    "LEASE_TIMEOUT": 5,
    "RESCUE_INTERVAL": 1,
}
# Schedules declared in settings, for the workers an e2e test starts (JSON: name -> entry).
QTASKS["SCHEDULES"] = env.json("QTASKS_TEST_SCHEDULES", default={})
QTASKS.update(env.json("QTASKS_TEST_QTASKS", default={}))
_notifier = env.str("QTASKS_TEST_NOTIFIER", default="")
if _notifier == "redis":
    if not REDIS_URL:
        raise ImproperlyConfigured("QTASKS_TEST_NOTIFIER=redis needs REDIS_URL")
    QTASKS["NOTIFIER"] = {
        "BACKEND": "qtasks_django.notifiers.redis.RedisNotifier",
        "OPTIONS": {"url": REDIS_URL},
    }
elif _notifier:
    raise ImproperlyConfigured(f"QTASKS_TEST_NOTIFIER must be 'redis' or unset, not {_notifier!r}")
_listen_database = env.str("QTASKS_TEST_LISTEN_DATABASE", default="")
if _listen_database:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    if _listen_database != "none":
        DATABASES["direct"] = env.db_url_config(_listen_database)
    QTASKS["NOTIFIER"] = {
        "BACKEND": "qtasks_django.notifiers.postgres.PostgresNotifier",
        "OPTIONS": {"listen_database": None if _listen_database == "none" else "direct"},
    }

# Django's Tasks framework (Django 6.0+) on our worker; the 5.2 leg has no django.tasks.
TASKS = {
    "default": {
        "BACKEND": "qtasks_django.backend.QTasksBackend",
        "QUEUES": ["default", "django_emails"],
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
STATIC_URL = "static/"

# Fast hashing: the tests create users, they do not test password storage.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"qtasks_django": {"level": "INFO"}},
}
