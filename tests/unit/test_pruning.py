"""The pure parts of pruning: retentions, statuses, and which retry chains are still live."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qtasks_django.queue.pruning import live_chains, parse_duration, validate_statuses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("3600", timedelta(hours=1)),
        ("1.5h", timedelta(minutes=90)),
        (" 10 d ", timedelta(days=10)),
        (90, timedelta(seconds=90)),
        (timedelta(hours=2), timedelta(hours=2)),
    ],
)
def test_retentions_read_as_durations(text, expected) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "d", "7x", "-1", "seven days", -3, True, None])
def test_anything_else_is_not_a_retention(text) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(text)


def test_finished_statuses_are_accepted_once_each() -> None:
    assert validate_statuses(["success", " error", "success", "retry", "cancel"]) == (
        "success",
        "error",
        "retry",
        "cancel",
    )


@pytest.mark.parametrize(
    ("statuses", "message"),
    [(["new"], "never pruned"), (["process"], "never pruned"), (["done"], "unknown"), ([""], "at least one")],
)
def test_live_or_unknown_statuses_are_refused(statuses, message) -> None:
    with pytest.raises(ValueError, match=message):
        validate_statuses(statuses)


def steps_from(table: dict[str, tuple[str, str | None]]):
    """A ``chain_steps`` over an in-memory table of ``uuid: (status, retry_child_uuid)``."""
    calls: list[list[str]] = []

    def chain_steps(uuids: list[str]) -> dict[str, tuple[str, str | None]]:
        calls.append(sorted(uuids))
        return {u: table[u] for u in uuids if u in table}

    return chain_steps, calls


def test_a_chain_is_live_until_its_last_attempt_ends() -> None:
    table = {
        "a2": ("retry", "a3"),
        "a3": ("new", None),
        "b2": ("process", None),
        "c2": ("retry", "c3"),
        "c3": ("success", None),
        "d2": ("error", None),
    }
    chain_steps, calls = steps_from(table)

    live = live_chains(
        {"a1": "a2", "b1": "b2", "c1": "c2", "d1": "d2", "e1": "gone", "f1": None}, chain_steps
    )

    assert live == {"a1", "b1"}
    assert calls == [["a2", "b2", "c2", "d2", "gone"], ["a3", "c3"]]  # one lookup per chain depth


def test_no_retry_rows_need_no_lookup() -> None:
    chain_steps, calls = steps_from({})

    assert live_chains({}, chain_steps) == set()
    assert calls == []


def test_a_looping_chain_is_kept_rather_than_followed_forever() -> None:
    chain_steps, _ = steps_from({"x": ("retry", "y"), "y": ("retry", "x")})

    assert live_chains({"r": "x"}, chain_steps) == {"r"}
