"""Packaging metadata for qtasks-django (the only metadata source)."""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"

setup(
    name="qtasks-django",
    version="0.1.0",
    description=(
        "A PostgreSQL-backed background task queue for Django with the QTasks task model: "
        "transactional enqueue, retries, leases, and a Django admin that shows and operates it all."
    ),
    long_description=README.read_text(encoding="utf-8") if README.exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["qtasks_django", "qtasks_django.*"]),
    include_package_data=True,
    package_data={
        "qtasks_django": [
            "py.typed",
            "migrations/*.py",
            "templates/**/*",
            "static/**/*",
            "locale/**/*",
        ],
    },
    zip_safe=False,
    python_requires=">=3.11",
    install_requires=["Django>=5.2,<6.2", "cronsim>=2.6"],
    extras_require={
        "redis": ["redis>=5.0"],
        "postgres": ["psycopg[binary]>=3.2"],
        # Django's Tasks framework on Django 5.2 (Django 6.0+ has django.tasks built in).
        "django-tasks": ["django-tasks>=0.12"],
    },
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Environment :: Web Environment",
        "Framework :: Django",
        "Framework :: Django :: 5.2",
        "Framework :: Django :: 6.0",
        "Framework :: Django :: 6.1",
        "Intended Audience :: Developers",
        "Operating System :: OS Independent",
        "Programming Language :: Python",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Software Development :: Libraries :: Python Modules",
        "Topic :: System :: Distributed Computing",
        "Typing :: Typed",
    ],
)
