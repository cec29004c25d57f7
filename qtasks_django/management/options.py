"""Argument types of the qtasks commands: numbers held to the same ``Bounds`` as the settings.

A refused value is an ``argparse.ArgumentTypeError``, which argparse turns into a usage
error naming the option (``argument --poll-interval: must be a finite number from 0.01
to 315360000 seconds, got 'nan'``, exit status 2) before the command does anything.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from django.db import connections

from qtasks_django.conf import Bounds


def number_in(bounds: Bounds) -> Callable[[str], float]:
    """An argparse ``type`` that reads a number and refuses what ``bounds`` refuses."""

    def number(text: str) -> float:
        try:
            value: float = int(text) if bounds.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {bounds.describe()}, got {text!r}") from None
        if why := bounds.refuses(value):
            raise argparse.ArgumentTypeError(f"{why}, got {text!r}")
        return value

    return number


def integer_in(bounds: Bounds) -> Callable[[str], int]:
    """Like ``number_in``, for whole numbers: the value is an ``int``."""
    read = number_in(bounds)
    return lambda text: int(read(text))


def database(value: str) -> str:
    """An argparse ``type``: a database alias of ``settings.DATABASES``."""
    if value not in connections:
        raise argparse.ArgumentTypeError(f"no database {value!r} (known: {', '.join(connections)})")
    return value
