"""Retry decisions (pure functions, no I/O)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..exceptions import TaskCancelError


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryDecision:
    """Run the task again, after ``delay`` seconds, with ``attempts_left`` after that run."""

    delay: float
    attempts_left: int


def should_retry(
    exc: BaseException, attempts_left: int | None, retry_on_exc: Sequence[type[BaseException]] | None
) -> bool:
    """Return whether a failure with ``exc`` earns another attempt.

    ``retry_on_exc`` matches with ``isinstance`` (subclasses count); empty means any
    ``Exception``. Cancels and non-``Exception`` errors (``SystemExit``...) never retry.
    """
    if not attempts_left or attempts_left <= 0:
        return False
    if isinstance(exc, TaskCancelError) or not isinstance(exc, Exception):
        return False
    if not retry_on_exc:
        return True
    return isinstance(exc, tuple(retry_on_exc))


def backoff_delay(
    attempt: int, *, base: float, maximum: float, jitter: bool, rng: random.Random | None = None
) -> float:
    """Return the delay before attempt ``attempt + 1`` (exponential, optionally jittered).

    With jitter the delay is drawn between half and all of the exponential value,
    so that tasks failing together do not retry together.
    """
    if base <= 0:
        return 0.0
    # The exponent is capped: 2 ** 1024 is no float, and past 2 ** 1000 the maximum wins
    # anyway (a float product that overflows is inf, never an error).
    delay = min(maximum, base * (2 ** min(max(0, attempt - 1), 1000)))
    if jitter:
        delay = (rng or random).uniform(delay / 2, delay)
    return delay


def decide(
    exc: BaseException,
    *,
    attempts_left: int | None,
    attempt: int,
    retry_on_exc: Sequence[type[BaseException]] | None,
    base: float,
    maximum: float,
    jitter: bool,
) -> RetryDecision | None:
    """Return the retry decision for a failed attempt, or ``None`` to fail for good."""
    if not should_retry(exc, attempts_left, retry_on_exc):
        return None
    assert attempts_left is not None
    delay = backoff_delay(attempt, base=base, maximum=maximum, jitter=jitter)
    return RetryDecision(delay=delay, attempts_left=attempts_left - 1)
