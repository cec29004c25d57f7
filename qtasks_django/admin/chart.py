"""The dashboard's throughput chart: bars per minute, drawn as SVG on the server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone


@dataclass(frozen=True, kw_only=True)
class MinuteCount:
    """Attempts that ended in one minute."""

    minute: datetime
    succeeded: int = 0
    failed: int = 0
    """Ended ``error``, ``retry`` or ``cancel``."""


@dataclass(frozen=True, kw_only=True)
class Bar:
    """One minute's stacked bar: successes at the bottom, failures on top (SVG units)."""

    x: float
    width: float
    success_y: float
    success_height: float
    failed_y: float
    failed_height: float
    title: str


@dataclass(frozen=True, kw_only=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    peak: int
    """The largest minute's total, the top of the scale."""
    total: int


def minutes_of(counts: list[MinuteCount], *, end: datetime, minutes: int) -> list[MinuteCount]:
    """One entry per minute of the ``minutes`` before ``end`` (minutes without attempts count 0)."""
    last = end.replace(second=0, microsecond=0)
    by_minute = {count.minute: count for count in counts}
    span = [last - timedelta(minutes=offset) for offset in range(minutes - 1, -1, -1)]
    return [by_minute.get(minute, MinuteCount(minute=minute)) for minute in span]


def throughput_chart(counts: list[MinuteCount], *, width: int = 720, height: int = 160) -> Chart:
    """Lay out one bar per entry of ``counts``, scaled to the busiest minute."""
    slot = width / max(len(counts), 1)
    peak = max((c.succeeded + c.failed for c in counts), default=0)
    scale = height / peak if peak else 0.0
    bars = []
    for index, count in enumerate(counts):
        success_height = count.succeeded * scale
        failed_height = count.failed * scale
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                success_y=round(height - success_height, 2),
                success_height=round(success_height, 2),
                failed_y=round(height - success_height - failed_height, 2),
                failed_height=round(failed_height, 2),
                title=f"{timezone.localtime(count.minute):%H:%M}: {count.succeeded} succeeded, {count.failed} failed",
            )
        )
    total = sum(c.succeeded + c.failed for c in counts)
    return Chart(width=width, height=height, bars=bars, peak=peak, total=total)
