"""When a schedule fires: a cron expression in a time zone, or a fixed interval (pure, no I/O).

Cron expressions are parsed and walked by cronsim, which follows Debian cron across
daylight-saving changes; the rules, as the docs (docs/schedules.md) state them:

- A wall-clock time the clock skips (02:30 on a spring-forward night) fires once, when
  the clock jumps past it (03:00 new time).
- A wall-clock time that happens twice (02:30 on a fall-back night) fires once, at its
  first occurrence.
- An expression whose hour field is a wildcard (``*/15 * * * *``) describes elapsed
  time: it fires in both passes of a repeated hour.

An interval fires every ``every`` of real time, whatever the zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .limits import DURATION_MAX

#: Cron's nicknames, spelled out (cronsim reads only fields). ``@reboot`` has no time.
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: The shortest interval: below a second, a schedule is a busy loop, not a schedule.
MIN_INTERVAL = timedelta(seconds=1)
MAX_INTERVAL = timedelta(seconds=DURATION_MAX)
#: Cron expressions are short; a longer text is a mistake (and the column's limit).
CRON_MAX = 255


class InvalidTiming(ValueError):
    """A cron expression, interval or time zone that cannot make a schedule."""


@dataclass(frozen=True)
class Timing:
    """A schedule's firing times: ``cron`` in ``zone``, or every ``every``.

    Build it with :meth:`parse`, which says what is wrong with bad input. Every
    datetime it takes must be aware; every one it returns is aware, in UTC.
    """

    cron: str | None
    every: timedelta | None
    zone: ZoneInfo

    @classmethod
    def parse(
        cls, *, cron: object = None, every: object = None, zone: object = None, default_zone: str = "UTC"
    ) -> Timing:
        """Check and build a timing; raise ``InvalidTiming`` naming the mistake."""
        if (cron is None or cron == "") == (every is None):
            raise InvalidTiming("give a cron expression or an interval, not both and not neither")
        tz = parse_zone(default_zone if zone is None or zone == "" else zone)
        if every is not None:
            return cls(None, parse_interval(every), tz)
        return cls(parse_cron(cron), None, tz)

    @classmethod
    def of(cls, value: object, *, zone: object = None, default_zone: str = "UTC") -> Timing:
        """Build from what ``@task(schedule=...)`` takes: a cron string or a ``timedelta``."""
        if isinstance(value, timedelta):
            return cls.parse(every=value, zone=zone, default_zone=default_zone)
        if isinstance(value, str):
            return cls.parse(cron=value, zone=zone, default_zone=default_zone)
        raise InvalidTiming(f"a schedule is a cron expression (str) or a timedelta, got {value!r}")

    def next_after(self, moment: datetime) -> datetime:
        """Return the first firing strictly after ``moment``."""
        _need_aware(moment)
        if self.every is not None:
            # In UTC: Python adds to a zoned datetime on the wall clock (a 23-hour "day").
            return _utc(moment) + self.every
        return _utc(next(CronSim(self._expression, moment.astimezone(self.zone))))

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """Return the next ``count`` firings strictly after ``after``."""
        times: list[datetime] = []
        moment = after
        for _ in range(count):
            moment = self.next_after(moment)
            times.append(moment)
        return times

    def due(self, first: datetime, until: datetime, limit: int) -> tuple[list[datetime], int]:
        """Return the firings in ``[first, until]`` (``first`` being one), at most the last ``limit``.

        Also return how many earlier ones were left out. A week of a per-minute cron
        is never walked one firing at a time: intervals are counted, cron is walked
        backwards from ``until``.
        """
        _need_aware(first)
        _need_aware(until)
        # In UTC: datetimes sharing a zone subtract and compare on the wall clock.
        first, until = _utc(first), _utc(until)
        if until < first or limit < 1:
            return [], 0
        if self.every is not None:
            count = math.floor((until - first) / self.every) + 1
            kept = min(count, limit)
            start = count - kept
            return [first + self.every * k for k in range(start, count)], count - kept
        latest: list[datetime] = []
        backwards = CronSim(
            self._expression, (until + timedelta(microseconds=1)).astimezone(self.zone), reverse=True
        )
        for moment in backwards:
            if moment < first or len(latest) == limit:
                break
            latest.append(_utc(moment))
        if first not in latest and len(latest) < limit:
            latest.append(first)  # ``first`` was due by definition, even off the expression (an edit)
        left_out = 0
        if len(latest) == limit and latest[-1] != first:  # the oldest kept is not ``first``: some left out
            left_out = self._count_between(first, latest[-1])
        return sorted(latest), left_out

    def describe(self) -> str:
        """A short sentence: ``"At 03:00 (Europe/Berlin)"``, ``"Every 5 minutes"``."""
        if self.every is not None:
            return f"Every {describe_interval(self.every)}"
        return f"{CronSim(self._expression, datetime.now(self.zone)).explain()} ({self.zone.key})"

    @property
    def _expression(self) -> str:
        assert self.cron is not None  # a cron timing by construction
        return ALIASES.get(self.cron.lower(), self.cron)

    def _count_between(self, first: datetime, before: datetime) -> int:
        # The firings left out by ``due``: at most a bounded walk (the count is only logged).
        count = 0
        for moment in CronSim(self._expression, first.astimezone(self.zone)):
            if moment >= before or count >= 100_000:
                break
            count += 1
        return count + 1  # ``first`` itself


def parse_cron(value: object) -> str:
    """Return a cron expression cronsim accepts (5 fields, 6 with seconds first, or an alias)."""
    if not isinstance(value, str):
        raise InvalidTiming(f"a cron expression is a string, got {value!r}")
    expression = " ".join(value.split())
    if not expression:
        raise InvalidTiming("the cron expression is empty")
    if len(expression) > CRON_MAX:
        raise InvalidTiming(f"a cron expression has at most {CRON_MAX} characters")
    if expression.startswith("@"):
        if expression.lower() not in ALIASES:
            known = ", ".join(ALIASES)
            raise InvalidTiming(f"{value!r} is not a cron nickname this scheduler knows ({known})")
        return expression.lower()
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise InvalidTiming(f"{value!r} is not a valid cron expression: {exc}") from None
    except (ValueError, TypeError, IndexError) as exc:  # cronsim's own checks missed it
        raise InvalidTiming(f"{value!r} is not a valid cron expression ({exc})") from None
    return expression


def parse_interval(value: object) -> timedelta:
    """Return an interval from ``MIN_INTERVAL`` to ``MAX_INTERVAL`` (a timedelta or seconds)."""
    if isinstance(value, bool) or not isinstance(value, timedelta | int | float):
        raise InvalidTiming(f"an interval is a timedelta or a number of seconds, got {value!r}")
    if not isinstance(value, timedelta):
        if not math.isfinite(value):
            raise InvalidTiming(f"an interval must be finite, got {value!r}")
        if abs(value) > DURATION_MAX:
            raise InvalidTiming(
                f"an interval is at most {describe_interval(MAX_INTERVAL)}, got {value!r} seconds"
            )
        value = timedelta(seconds=value)
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise InvalidTiming(
            f"an interval is from {describe_interval(MIN_INTERVAL)} to {describe_interval(MAX_INTERVAL)}, "
            f"got {value}"
        )
    return value


def parse_zone(value: object) -> ZoneInfo:
    """Return the IANA time zone named ``value``."""
    if isinstance(value, ZoneInfo):
        return value
    if not isinstance(value, str) or not value:
        raise InvalidTiming(f"a time zone is an IANA name such as 'Europe/Berlin', got {value!r}")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidTiming(
            f"{value!r} is not a known time zone (an IANA name such as 'Europe/Berlin')"
        ) from None


def describe_interval(every: timedelta) -> str:
    """``"5 minutes"``, ``"1 day"``, ``"90 seconds"``: the largest unit that divides it."""
    seconds = every.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            amount = int(seconds // size)
            return f"{amount} {unit}{'' if amount == 1 else 's'}"
    amount_text = f"{seconds:g}"
    return f"{amount_text} second{'' if seconds == 1 else 's'}"


def _need_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"Timing needs aware datetimes, got {moment!r}")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
