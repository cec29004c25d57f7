"""Properties of ``Timing``: ``due`` and ``upcoming`` agree with a walk of ``next_after``.

Expressions are built field by field; start times cluster around daylight-saving changes
(north, south, half-hour) so that the walks cross them. Windows stay short enough for the
brute-force walk to be quick.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from qtasks_django.timing import Timing

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
]
#: Days of 2026 with a DST change in one of ZONES, and one without.
DAYS = [
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 4, 5, tzinfo=UTC),
    datetime(2026, 10, 4, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 6, 15, tzinfo=UTC),
]


def field(low: int, high: int) -> st.SearchStrategy[str]:
    """One cron field over ``low..high``: ``*``, a value, a range, a list or a step."""
    value = st.integers(low, high)
    span = st.tuples(value, value).map(sorted)
    return st.one_of(
        st.just("*"),
        value.map(str),
        span.map(lambda pair: f"{pair[0]}-{pair[1]}"),
        st.lists(value, min_size=2, max_size=4, unique=True).map(lambda values: ",".join(map(str, values))),
        st.integers(2, max(2, high // 2)).map(lambda step: f"*/{step}"),
        st.tuples(span, st.integers(1, 5)).map(lambda spec: f"{spec[0][0]}-{spec[0][1]}/{spec[1]}"),
    )


# Days of month up to 28 only: "31 2" would be refused, and "31 4" never fires.
CRONS = st.one_of(
    st.tuples(field(0, 59), field(0, 23), st.just("*"), st.just("*"), st.just("*")),
    st.tuples(field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 6)),
).map(" ".join)
# Seconds first: a few values per minute keep a day's walk short.
CRONS_SECONDS = st.tuples(
    st.sampled_from(["0", "30", "0,20,40", "*/15"]), field(0, 59), field(0, 23), st.just("* * *")
).map(" ".join)


@st.composite
def moments(draw: st.DrawFn) -> datetime:
    """An aware moment within a day and a half of a DST change, in UTC or a zone."""
    moment = draw(st.sampled_from(DAYS)) + timedelta(seconds=draw(st.integers(-36 * 3600, 36 * 3600)))
    return moment.astimezone(draw(st.sampled_from([UTC, *map(ZoneInfo, ZONES)])))


def walk(timing: Timing, first: datetime, until: datetime) -> list[datetime]:
    """``first`` and every firing after it up to ``until``: one ``next_after`` at a time."""
    times, moment = [first.astimezone(UTC)], first
    while (moment := timing.next_after(moment)) <= until:
        times.append(moment)
    return times


def check_due(timing: Timing, first: datetime, window: timedelta, limit: int) -> None:
    until = first + window
    expected = walk(timing, first, until)
    times, left_out = timing.due(first, until, limit)
    assert times == expected[-limit:]
    assert left_out == len(expected) - len(times)


def check_upcoming(timing: Timing, after: datetime, count: int) -> None:
    times = timing.upcoming(after, count)
    assert len(times) == count
    assert all(moment.tzinfo is UTC for moment in times)
    assert all(earlier < later for earlier, later in zip([after, *times], times, strict=False))
    assert times[0] == timing.next_after(after)


@settings(max_examples=150, deadline=None)
@given(
    cron=CRONS,
    zone=st.sampled_from(ZONES),
    start=moments(),
    on_time=st.booleans(),
    window=st.integers(0, 30 * 3600).map(lambda seconds: timedelta(seconds=seconds)),
    limit=st.integers(1, 40),
)
def test_cron_due_is_the_last_limit_of_a_walk(cron, zone, start, on_time, window, limit) -> None:
    timing = Timing.parse(cron=cron, zone=zone)
    # ``first`` is normally a firing (the stored next one); off the expression after an edit.
    first = timing.next_after(start) if on_time else start
    check_due(timing, first, window, limit)


@settings(max_examples=60, deadline=None)
@given(
    cron=CRONS_SECONDS,
    zone=st.sampled_from(ZONES),
    start=moments(),
    window=st.integers(0, 6 * 3600).map(lambda seconds: timedelta(seconds=seconds)),
    limit=st.integers(1, 40),
)
def test_cron_with_seconds_due_is_the_last_limit_of_a_walk(cron, zone, start, window, limit) -> None:
    timing = Timing.parse(cron=cron, zone=zone)
    check_due(timing, timing.next_after(start), window, limit)


@settings(max_examples=150, deadline=None)
@given(
    cron=st.one_of(CRONS, CRONS_SECONDS),
    zone=st.sampled_from(ZONES),
    after=moments(),
    count=st.integers(1, 30),
)
def test_cron_upcoming_strictly_increases_after_its_start(cron, zone, after, count) -> None:
    timing = Timing.parse(cron=cron, zone=zone)
    check_upcoming(timing, after, count)
    assert timing.describe().endswith(f" ({zone})")  # qtasks_schedules and the admin show it


INTERVALS = st.one_of(
    st.integers(1, 3 * 86400).map(lambda seconds: timedelta(seconds=seconds)),
    st.floats(1, 7200, allow_nan=False).map(lambda seconds: timedelta(seconds=seconds)),
)


@settings(max_examples=150, deadline=None)
@given(
    every=INTERVALS,
    zone=st.sampled_from(ZONES),
    first=moments(),
    window=st.integers(0, 3 * 86400).map(lambda seconds: timedelta(seconds=seconds)),
    limit=st.integers(1, 40),
)
def test_interval_due_is_the_last_limit_of_a_walk(every, zone, first, window, limit) -> None:
    timing = Timing.parse(every=every, zone=zone)
    if window / every > 5000:  # keep the brute-force walk short
        window = every * 5000
    check_due(timing, first, window, limit)


@settings(max_examples=100, deadline=None)
@given(every=INTERVALS, zone=st.sampled_from(ZONES), after=moments(), count=st.integers(1, 30))
def test_interval_upcoming_is_evenly_spaced_in_real_time(every, zone, after, count) -> None:
    timing = Timing.parse(every=every, zone=zone)
    check_upcoming(timing, after, count)
    times = timing.upcoming(after, count)
    assert times[0] - after == every
    assert all(later - earlier == every for earlier, later in pairwise(times))
