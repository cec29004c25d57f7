"""The admin's pure pieces: percentiles, the progress bar's share, the chart, durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qtasks_django.admin.chart import MinuteCount, minutes_of, throughput_chart
from qtasks_django.admin.common import format_duration
from qtasks_django.admin.detail import progress_fraction
from qtasks_django.admin.stats import percentile


class TestPercentile:
    def test_interpolates_between_ranks_like_percentile_cont(self) -> None:
        # PostgreSQL: percentile_cont(0.5) of 1..4 is 2.5, percentile_cont(0.95) is 3.85.
        assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
        assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == pytest.approx(3.85)

    def test_one_value_is_every_percentile(self) -> None:
        assert percentile([7.0], 0.5) == percentile([7.0], 0.95) == 7.0

    def test_no_values_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="no values"):
            percentile([], 0.5)


class TestProgressFraction:
    @pytest.mark.parametrize(
        ("value", "share"),
        [
            ({"done": 3, "total": 12}, 0.25),
            ({"of": 5, "done": 1}, 0.2),
            ({"percent": 40}, 0.4),
            ({"percent": 140}, 1.0),
            ({"done": -1, "total": 10}, 0.0),
            ({"percent": 25, "done": 9, "total": 10}, 0.25),
        ],
    )
    def test_a_dict_stating_its_share_drives_the_bar(self, value: dict, share: float) -> None:
        assert progress_fraction(value) == pytest.approx(share)

    @pytest.mark.parametrize(
        "value",
        [
            "step 3",
            3,
            None,
            [1, 2],
            {"done": 3},
            {"done": 3, "total": 0},
            {"percent": True},
            {"percent": "50"},
        ],
    )
    def test_other_values_are_steps_of_unknown_total(self, value: object) -> None:
        assert progress_fraction(value) is None


class TestChart:
    end = datetime(2026, 11, 22, 12, 30, 45, tzinfo=UTC)

    def test_every_minute_of_the_span_has_an_entry_the_empty_ones_zero(self) -> None:
        busy = MinuteCount(minute=datetime(2026, 11, 22, 12, 28, tzinfo=UTC), succeeded=5, failed=1)
        minutes = minutes_of([busy], end=self.end, minutes=4)
        assert [m.minute.minute for m in minutes] == [27, 28, 29, 30]
        assert [(m.succeeded, m.failed) for m in minutes] == [(0, 0), (5, 1), (0, 0), (0, 0)]

    def test_bars_are_scaled_to_the_busiest_minute_failures_on_top(self) -> None:
        counts = [
            MinuteCount(minute=self.end, succeeded=6, failed=2),
            MinuteCount(minute=self.end + timedelta(minutes=1), succeeded=2, failed=0),
        ]
        chart = throughput_chart(counts, width=200, height=100)
        first, second = chart.bars
        assert (chart.peak, chart.total) == (8, 10)
        assert first.success_height == 75.0 and first.failed_height == 25.0
        assert first.failed_y == 0.0 and first.success_y == 25.0
        assert second.success_height == 25.0 and second.success_y == 75.0
        assert first.x < second.x and first.width == second.width == 80.0

    def test_an_idle_hour_draws_empty_bars(self) -> None:
        chart = throughput_chart(minutes_of([], end=self.end, minutes=60))
        assert len(chart.bars) == 60
        assert chart.peak == chart.total == 0
        assert all(bar.success_height == bar.failed_height == 0 for bar in chart.bars)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.1234, "0.12 s"), (12.34, "12.3 s"), (184, "3 min 4 s"), (7500, "2 h 5 min")],
)
def test_durations_read_naturally(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
