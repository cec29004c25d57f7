"""``Timing``: what it refuses, what it says, and when it fires (DST included). No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from qtasks_django.timing import ALIASES, CRON_MAX, InvalidTiming, Timing, describe_interval


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def firings(cron: str, zone: str, after: str, until: str) -> list[datetime]:
    """Every firing strictly after ``after`` and up to ``until`` (both UTC)."""
    timing = Timing.parse(cron=cron, zone=zone)
    times, moment = [], utc(after)
    while (moment := timing.next_after(moment)) <= utc(until):
        times.append(moment)
    return times


# Aliases and expressions


@pytest.mark.parametrize(("alias", "fields"), sorted(ALIASES.items()))
def test_an_alias_fires_as_its_fields(alias, fields) -> None:
    start = utc("2026-05-17T10:11:12")
    assert Timing.parse(cron=alias).upcoming(start, 3) == Timing.parse(cron=fields).upcoming(start, 3)


def test_an_alias_is_read_in_any_case_and_kept_lower_case() -> None:
    assert Timing.parse(cron="@Daily").cron == "@daily"
    assert Timing.parse(cron="@HOURLY").next_after(utc("2026-01-01T10:30:00")) == utc("2026-01-01T11:00:00")


def test_spaces_are_normalised() -> None:
    assert Timing.parse(cron="  0   3 *\t* * ").cron == "0 3 * * *"


def test_six_fields_read_seconds_first() -> None:
    timing = Timing.parse(cron="*/5 * * * * *")
    assert timing.upcoming(utc("2026-01-01T00:00:00"), 3) == [
        utc("2026-01-01T00:00:05"),
        utc("2026-01-01T00:00:10"),
        utc("2026-01-01T00:00:15"),
    ]


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 * * * *", "Bad minute"),
        ("* 24 * * *", "Bad hour"),
        ("0 0 30 2 *", "Bad day-of-month"),
        ("0 0 * 13 *", "Bad month"),
        ("0 0 * * 8", "Bad day-of-week"),
        ("* * * * * * *", "Wrong number of fields"),
        ("* * * *", "Wrong number of fields"),
        ("   ", "the cron expression is empty"),
        ("0 3 * * *\x00", "is not a valid cron expression"),
        ("\x000 3 * * *", "is not a valid cron expression"),
        ("0 " * 200, f"at most {CRON_MAX} characters"),
        ("@reboot", "'@reboot' is not a cron nickname"),
        ("@fortnightly", "is not a cron nickname this scheduler knows (@yearly"),
        ("0 3 ? * *", "Bad day-of-month"),
        ("0 3 * * \uff17", "Bad day-of-week"),  # a full-width 7 is no digit to cron
    ],
)
def test_a_bad_cron_expression_is_refused_naming_the_problem(cron, message) -> None:
    with pytest.raises(InvalidTiming) as refused:
        Timing.parse(cron=cron)
    assert message in str(refused.value)


@pytest.mark.parametrize("cron", [5, 1.5, b"0 3 * * *", ["0 3 * * *"], True])
def test_a_cron_expression_that_is_not_a_string_is_refused(cron) -> None:
    with pytest.raises(InvalidTiming, match="a cron expression is a string"):
        Timing.parse(cron=cron)


@pytest.mark.parametrize(("cron", "every"), [(None, None), ("", None), ("0 3 * * *", 60)])
def test_a_timing_is_cron_or_interval_exactly(cron, every) -> None:
    with pytest.raises(
        InvalidTiming, match="give a cron expression or an interval, not both and not neither"
    ):
        Timing.parse(cron=cron, every=every)


@pytest.mark.parametrize("value", [5, None, 1.5, b"@daily"])
def test_of_takes_only_a_string_or_a_timedelta(value) -> None:
    with pytest.raises(InvalidTiming, match=r"a schedule is a cron expression \(str\) or a timedelta"):
        Timing.of(value)


def test_of_reads_a_string_as_cron_and_a_timedelta_as_interval() -> None:
    assert Timing.of("@daily", zone="Europe/Berlin") == Timing("@daily", None, ZoneInfo("Europe/Berlin"))
    assert Timing.of(timedelta(minutes=5)).every == timedelta(minutes=5)


# Intervals


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (1, 1),
        (1.5, 1.5),
        (315_360_000, 315_360_000),
        (timedelta(seconds=1), 1),
        (timedelta(days=3650), 315_360_000),
    ],
)
def test_an_interval_is_a_number_of_seconds_or_a_timedelta_in_bounds(value, seconds) -> None:
    assert Timing.parse(every=value).every == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "an interval is from 1 second to 3650 days"),
        (0.999, "an interval is from 1 second to 3650 days"),
        (-5, "an interval is from 1 second to 3650 days"),
        (timedelta(0), "an interval is from 1 second to 3650 days"),
        (timedelta(seconds=-1), "an interval is from 1 second to 3650 days"),
        (timedelta(days=3650, seconds=1), "an interval is from 1 second to 3650 days"),
        (315_360_001, "an interval is at most 3650 days"),
        (1e300, "an interval is at most 3650 days"),
        (-1e300, "an interval is at most 3650 days"),
        (float("nan"), "an interval must be finite"),
        (float("inf"), "an interval must be finite"),
        (float("-inf"), "an interval must be finite"),
        (True, "an interval is a timedelta or a number of seconds, got True"),
        (False, "an interval is a timedelta or a number of seconds, got False"),
        ("60", "an interval is a timedelta or a number of seconds, got '60'"),
        ([60], "an interval is a timedelta or a number of seconds"),
    ],
)
def test_a_bad_interval_is_refused_naming_the_problem(value, message) -> None:
    with pytest.raises(InvalidTiming) as refused:
        Timing.parse(every=value)
    assert message in str(refused.value)


def test_an_interval_is_real_time_whatever_the_zone() -> None:
    # Across Berlin's spring-forward night, 24 hours later is an hour later on the wall clock.
    timing = Timing.parse(every=timedelta(hours=24), zone="Europe/Berlin")
    start = local("2026-03-28T12:00:00", "Europe/Berlin")
    assert timing.next_after(start) == start.astimezone(UTC) + timedelta(hours=24)
    assert timing.next_after(start).astimezone(ZoneInfo("Europe/Berlin")).hour == 13
    # Python adds to a zoned datetime on the wall clock; the interval must not (a 23-hour "day").
    assert timing.next_after(start) != (start + timedelta(hours=24)).astimezone(UTC)
    assert timing.next_after(start).tzinfo is UTC


def test_due_of_an_interval_counts_real_time_from_a_zoned_first() -> None:
    timing = Timing.parse(every=timedelta(hours=24), zone="Europe/Berlin")
    first = local("2026-03-28T12:00:00", "Europe/Berlin")  # 11:00 UTC
    until = local("2026-03-30T12:30:00", "Europe/Berlin")  # 10:30 UTC: 47.5 real hours later
    assert timing.due(first, until, 5) == ([utc("2026-03-28T11:00"), utc("2026-03-29T11:00")], 0)


# Zones


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not a known time zone"),
        ("../../etc/passwd", "is not a known time zone"),
        ("Europe/Berlin\x00", "is not a known time zone"),
        (5, "a time zone is an IANA name such as 'Europe/Berlin', got 5"),
        (b"UTC", "a time zone is an IANA name"),
    ],
)
def test_a_bad_zone_is_refused_naming_it(zone, message) -> None:
    with pytest.raises(InvalidTiming) as refused:
        Timing.parse(cron="@daily", zone=zone)
    assert message in str(refused.value)


def test_no_zone_or_an_empty_one_is_the_default_zone() -> None:
    assert Timing.parse(cron="@daily").zone.key == "UTC"
    assert Timing.parse(cron="@daily", zone="", default_zone="Asia/Tokyo").zone.key == "Asia/Tokyo"
    with pytest.raises(InvalidTiming, match="'Nowhere' is not a known time zone"):
        Timing.parse(cron="@daily", default_zone="Nowhere")


def test_naive_datetimes_are_refused() -> None:
    timing = Timing.parse(cron="@daily")
    with pytest.raises(ValueError, match="aware datetimes"):
        timing.next_after(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware datetimes"):
        timing.due(datetime(2026, 1, 1), utc("2026-01-02T00:00:00"), 5)


# describe()


@pytest.mark.parametrize(
    ("timing", "text"),
    [
        (Timing.parse(cron="0 3 * * *", zone="Europe/Berlin"), "At 03:00 every day (Europe/Berlin)"),
        (Timing.parse(cron="@daily"), "At 00:00 every day (UTC)"),
        (Timing.parse(every=300), "Every 5 minutes"),
        (Timing.parse(every=60), "Every 1 minute"),
        (Timing.parse(every=90), "Every 90 seconds"),
        (Timing.parse(every=1), "Every 1 second"),
        (Timing.parse(every=1.5), "Every 1.5 seconds"),
        (Timing.parse(every=7200), "Every 2 hours"),
        (Timing.parse(every=timedelta(days=1)), "Every 1 day"),
        (Timing.parse(every=timedelta(days=1, hours=1)), "Every 25 hours"),
    ],
)
def test_describe_says_when_it_fires(timing, text) -> None:
    assert timing.describe() == text


def test_describe_interval_picks_the_largest_unit_that_divides() -> None:
    assert describe_interval(timedelta(days=14)) == "14 days"
    assert describe_interval(timedelta(seconds=3660)) == "61 minutes"


# Daylight-saving time: the documented rules, exactly


@pytest.mark.parametrize(
    ("zone", "after", "until", "expected"),
    [
        # Berlin springs forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC): 02:30 fires at 03:00.
        ("Europe/Berlin", "2026-03-28T12:00", "2026-03-30T12:00", ["2026-03-29T01:00", "2026-03-30T00:30"]),
        # Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 fires at its first pass (CEST).
        ("Europe/Berlin", "2026-10-24T12:00", "2026-10-26T12:00", ["2026-10-25T00:30", "2026-10-26T01:30"]),
        # New York springs forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC).
        (
            "America/New_York",
            "2026-03-07T12:00",
            "2026-03-09T12:00",
            ["2026-03-08T07:00", "2026-03-09T06:30"],
        ),
        # New York falls back 2026-11-01 02:00 EDT -> 01:00 EST: 02:30 EST happens once only.
        (
            "America/New_York",
            "2026-10-31T12:00",
            "2026-11-02T12:00",
            ["2026-11-01T07:30", "2026-11-02T07:30"],
        ),
        # Sydney (south): DST ends 2026-04-05 03:00 AEDT -> 02:00 AEST; 02:30 fires in AEDT.
        (
            "Australia/Sydney",
            "2026-04-04T00:00",
            "2026-04-06T00:00",
            ["2026-04-04T15:30", "2026-04-05T16:30"],
        ),
        # Sydney: DST starts 2026-10-04 02:00 AEST -> 03:00 AEDT; 02:30 fires at 03:00 AEDT.
        (
            "Australia/Sydney",
            "2026-10-03T00:00",
            "2026-10-05T00:00",
            ["2026-10-03T16:00", "2026-10-04T15:30"],
        ),
        # No DST in Kolkata (+05:30): 02:30 is 21:00 UTC the day before, every day.
        ("Asia/Kolkata", "2026-03-28T00:00", "2026-03-30T00:00", ["2026-03-28T21:00", "2026-03-29T21:00"]),
    ],
)
def test_a_daily_wall_time_fires_once_a_day_across_dst(zone, after, until, expected) -> None:
    assert firings("30 2 * * *", zone, after, until) == [utc(moment) for moment in expected]


def test_new_york_repeated_hour_fires_once_at_its_first_occurrence() -> None:
    # 01:30 happens at 05:30 UTC (EDT) and 06:30 UTC (EST) on 2026-11-01.
    assert firings("30 1 * * *", "America/New_York", "2026-10-31T12:00", "2026-11-02T12:00") == [
        utc("2026-11-01T05:30"),
        utc("2026-11-02T06:30"),
    ]


def test_lord_howe_half_hour_shifts_follow_the_same_rules() -> None:
    # Lord Howe moves by 30 minutes: +10:30 standard, +11 summer.
    # 2026-10-04 02:00 -> 02:30: 02:15 is skipped and fires at 02:30 (+11) = 15:30 UTC.
    assert firings("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00", "2026-10-05T00:00") == [
        utc("2026-10-03T15:30"),
        utc("2026-10-04T15:15"),
    ]
    # 2026-04-05 02:00 -> 01:30: 01:45 happens twice and fires at its first (+11) = 14:45 UTC.
    assert firings("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00", "2026-04-06T00:00") == [
        utc("2026-04-04T14:45"),
        utc("2026-04-05T15:15"),
    ]


def test_a_wildcard_hour_fires_in_both_passes_of_the_repeated_hour() -> None:
    # Berlin 2026-10-25: 02:00-03:00 CEST is 00:00-01:00 UTC, 02:00-03:00 CET is 01:00-02:00 UTC.
    got = firings("*/30 * * * *", "Europe/Berlin", "2026-10-24T23:45", "2026-10-25T02:15")
    assert got == [utc(f"2026-10-25T{hm}") for hm in ("00:00", "00:30", "01:00", "01:30", "02:00")]
    walls = [moment.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") for moment in got]
    assert walls == ["02:00", "02:30", "02:00", "02:30", "03:00"]


def test_a_wildcard_hour_skips_nothing_real_on_spring_forward() -> None:
    # Berlin 2026-03-29: from 01:30 CET (00:30 UTC) the next half hour is 03:00 CEST (01:00 UTC).
    got = firings("*/30 * * * *", "Europe/Berlin", "2026-03-29T00:15", "2026-03-29T01:45")
    assert got == [utc("2026-03-29T00:30"), utc("2026-03-29T01:00"), utc("2026-03-29T01:30")]


def test_new_york_wildcard_hour_fires_in_both_passes() -> None:
    got = firings("0,30 * * * *", "America/New_York", "2026-11-01T04:45", "2026-11-01T07:15")
    assert got == [utc(f"2026-11-01T{hm}") for hm in ("05:00", "05:30", "06:00", "06:30", "07:00")]


@pytest.mark.parametrize(
    ("cron", "zone", "first", "until", "expected"),
    [
        # An outage over Berlin's spring-forward night: due() agrees with next_after.
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T01:30",
            "2026-03-30T12:00",
            ["2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"],
        ),
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-24T00:30",
            "2026-10-26T12:00",
            ["2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"],
        ),
    ],
)
def test_due_across_dst_lists_the_same_firings_as_next_after(cron, zone, first, until, expected) -> None:
    times, left_out = Timing.parse(cron=cron, zone=zone).due(utc(first), utc(until), 10)
    assert (times, left_out) == ([utc(moment) for moment in expected], 0)


def test_due_keeps_the_latest_and_counts_the_rest() -> None:
    timing = Timing.parse(cron="0 * * * *")
    times, left_out = timing.due(utc("2026-01-01T00:00"), utc("2026-01-02T00:00"), 3)
    assert times == [utc("2026-01-01T22:00"), utc("2026-01-01T23:00"), utc("2026-01-02T00:00")]
    assert left_out == 22


def test_due_counts_first_even_off_the_expression() -> None:
    # ``first`` is a stored next firing, from before the expression was edited: still due.
    timing = Timing.parse(cron="0 * * * *")
    assert timing.due(utc("2026-01-01T00:10"), utc("2026-01-01T01:30"), 5) == (
        [utc("2026-01-01T00:10"), utc("2026-01-01T01:00")],
        0,
    )


def test_due_of_an_empty_window_or_limit_is_nothing() -> None:
    timing = Timing.parse(cron="@hourly")
    assert timing.due(utc("2026-01-02T00:00"), utc("2026-01-01T00:00"), 5) == ([], 0)
    assert timing.due(utc("2026-01-01T00:00"), utc("2026-01-02T00:00"), 0) == ([], 0)


def test_due_leaves_nothing_out_when_first_is_the_only_firing_kept() -> None:
    # Found by the property tests: limit 1 at ``first`` itself counted ``first`` as left out.
    timing = Timing.parse(cron="* * * * *")
    assert timing.due(utc("2026-03-08T00:00"), utc("2026-03-08T00:00"), 1) == ([utc("2026-03-08T00:00")], 0)
    assert timing.due(utc("2026-03-08T00:00"), utc("2026-03-08T00:01"), 2) == (
        [utc("2026-03-08T00:00"), utc("2026-03-08T00:01")],
        0,
    )
