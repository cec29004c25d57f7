"""Retry decisions: which failures earn another attempt, and after how long (retry.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qtasks_django import TaskCancelError, TaskTimeoutError
from qtasks_django.tasks.retry import RetryDecision, backoff_delay, decide, should_retry


class AppError(Exception):
    pass


class SpecificAppError(AppError):
    pass


# -- should_retry -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "retry_on_exc"),
    [
        (ZeroDivisionError(), [ZeroDivisionError]),
        (ZeroDivisionError(), [ArithmeticError]),
        (SpecificAppError(), [AppError]),
        (KeyError("k"), [ValueError, LookupError]),
    ],
    ids=["exact", "builtin-subclass", "user-subclass", "one-of-several"],
)
def test_listed_exception_or_subclass_is_retried(exc, retry_on_exc) -> None:
    assert should_retry(exc, 2, retry_on_exc) is True


@pytest.mark.parametrize(
    ("exc", "retry_on_exc"),
    [(ZeroDivisionError(), [KeyError]), (AppError(), [SpecificAppError])],
    ids=["unrelated", "parent-of-listed"],
)
def test_unlisted_exception_is_not_retried(exc, retry_on_exc) -> None:
    assert should_retry(exc, 2, retry_on_exc) is False


@pytest.mark.parametrize("retry_on_exc", [None, []], ids=["none", "empty"])
@pytest.mark.parametrize("exc", [ValueError(), RuntimeError(), AppError(), TaskTimeoutError()], ids=type)
def test_no_exception_list_retries_any_exception(exc, retry_on_exc) -> None:
    assert should_retry(exc, 1, retry_on_exc) is True


@pytest.mark.parametrize(
    "retry_on_exc", [None, [RuntimeError], [BaseException]], ids=["any", "parent", "base"]
)
def test_cancel_is_never_retried(retry_on_exc) -> None:
    assert should_retry(TaskCancelError("stop"), 5, retry_on_exc) is False


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()], ids=type)
@pytest.mark.parametrize("retry_on_exc", [None, [BaseException]], ids=["any", "base-listed"])
def test_non_exception_errors_are_never_retried(exc, retry_on_exc) -> None:
    assert should_retry(exc, 5, retry_on_exc) is False


@pytest.mark.parametrize("attempts_left", [0, None, -1], ids=repr)
def test_no_attempts_left_means_no_retry(attempts_left) -> None:
    assert should_retry(ValueError(), attempts_left, None) is False


# -- backoff_delay --------------------------------------------------------------------------------


@pytest.mark.parametrize(("attempt", "expected"), [(1, 1.5), (2, 3.0), (3, 6.0), (4, 12.0), (0, 1.5)])
def test_delay_doubles_with_each_attempt(attempt, expected) -> None:
    assert backoff_delay(attempt, base=1.5, maximum=1000, jitter=False) == expected


def test_delay_is_capped_at_the_maximum() -> None:
    assert backoff_delay(20, base=1, maximum=300, jitter=False) == 300
    assert backoff_delay(9, base=1, maximum=300, jitter=False) == 256


@pytest.mark.parametrize("attempt", [1, 3, 6, 30])
def test_jittered_delay_lies_between_half_and_all_of_the_delay(attempt) -> None:
    rng = random.Random(1234)
    full = backoff_delay(attempt, base=2, maximum=100, jitter=False)
    delays = [backoff_delay(attempt, base=2, maximum=100, jitter=True, rng=rng) for _ in range(200)]
    assert all(full / 2 <= d <= full for d in delays)
    assert len(set(delays)) > 100  # spread, so tasks failing together do not retry together


def test_jitter_follows_the_given_random_generator() -> None:
    first = [backoff_delay(3, base=1, maximum=60, jitter=True, rng=random.Random(7)) for _ in range(3)]
    again = [backoff_delay(3, base=1, maximum=60, jitter=True, rng=random.Random(7)) for _ in range(3)]
    assert first == again


@pytest.mark.parametrize("jitter", [False, True])
@pytest.mark.parametrize("base", [0, -1.0])
def test_zero_base_means_no_delay(base, jitter) -> None:
    assert backoff_delay(5, base=base, maximum=300, jitter=jitter, rng=random.Random(0)) == 0.0


# -- decide -----------------------------------------------------------------------------------------


def test_decide_retries_with_one_attempt_fewer_and_the_backoff_delay() -> None:
    decision = decide(
        ValueError(), attempts_left=3, attempt=2, retry_on_exc=None, base=1, maximum=60, jitter=False
    )
    assert decision == RetryDecision(delay=2.0, attempts_left=2)


def test_decide_on_the_last_attempt_leaves_zero_attempts() -> None:
    decision = decide(
        ValueError(), attempts_left=1, attempt=4, retry_on_exc=[ValueError], base=0, maximum=60, jitter=True
    )
    assert decision == RetryDecision(delay=0.0, attempts_left=0)


@pytest.mark.parametrize(
    ("exc", "attempts_left", "retry_on_exc"),
    [
        (ValueError(), 0, None),
        (ValueError(), None, None),
        (KeyError(), 3, [ValueError]),
        (TaskCancelError(), 3, None),
        (SystemExit(), 3, None),
    ],
    ids=["exhausted", "no-retry", "unlisted", "cancel", "system-exit"],
)
def test_decide_fails_for_good_when_no_retry_is_due(exc, attempts_left, retry_on_exc) -> None:
    assert (
        decide(
            exc,
            attempts_left=attempts_left,
            attempt=1,
            retry_on_exc=retry_on_exc,
            base=1,
            maximum=9,
            jitter=False,
        )
        is None
    )


@given(
    attempt=st.integers(min_value=1, max_value=2**31),
    base=st.floats(min_value=0, max_value=315_360_000),
    maximum=st.floats(min_value=0, max_value=315_360_000),
    jitter=st.booleans(),
)
def test_the_delay_of_any_attempt_is_a_number_within_the_maximum(attempt, base, maximum, jitter) -> None:
    # A task with retry=5000 reaches attempts where 2 ** attempt is no float.
    delay = backoff_delay(attempt, base=base, maximum=maximum, jitter=jitter, rng=random.Random(0))
    assert 0 <= delay <= maximum or (base == 0 and delay == 0)
