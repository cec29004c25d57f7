"""Settings of the example project, read from the environment with django-environ.

Everything has a development default, so ``python manage.py migrate`` and
``python manage.py qtasks_worker`` work with no configuration at all (SQLite,
no Redis). Set, in the environment or in a ``.env`` file next to ``manage.py``:

* ``DATABASE_URL``: e.g. ``postgres://user:pass@localhost:5432/qtasks``;
* ``REDIS_URL``: e.g. ``redis://localhost:6379/0``, to wake workers and waiters
  through Redis (optional; PostgreSQL stays the record);
* ``DEBUG``, ``SECRET_KEY``, ``ALLOWED_HOSTS`` (comma separated; required when
  ``DEBUG`` is off).
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env(
    DEBUG=(bool, True),
    # Empty: with DEBUG, Django accepts localhost, 127.0.0.1 and [::1] (and the test client).
    ALLOWED_HOSTS=(list, []),
)
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env("DEBUG")
# A development key only: set SECRET_KEY anywhere the project is reachable.
SECRET_KEY = env("SECRET_KEY", default="django-insecure-qtasks-example-project-dev-key")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "qtasks_django",
    "example_project.demo",
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

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

QTASKS = {
    "DEFAULT_PRIORITY": 0,
    "DEFAULT_QUEUE": "default",
    # Seconds before the first retry (doubled per attempt, with jitter); kept
    # short so the demo's flaky task finishes quickly.
    "RETRY_BACKOFF": 0.5,
    "WORKER_CONCURRENCY": 4,
    "SHUTDOWN_TIMEOUT": 10.0,
    # A schedule with arguments (demo.tasks.tick shows one declared on the task itself).
    "SCHEDULES": {
        "morning-summary": {"task": "summary", "cron": "0 8 * * *", "kwargs": {"hours": 24}},
    },
}

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    QTASKS["NOTIFIER"] = {
        "BACKEND": "qtasks_django.notifiers.redis.RedisNotifier",
        "OPTIONS": {"url": REDIS_URL},
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "loggers": {
        "qtasks_django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "example_project": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
