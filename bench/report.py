"""Turn the runs of each measure into medians, ratios to the substrate, targets and tables.

Everything here is pure: the benchmark's numbers in, text out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

K = TypeVar("K")

SUBSTRATE = "raw_insert"
"""The yardstick: single-row INSERT + COMMIT per second on the same database, same run."""


@dataclass
class Measure:
    """One thing measured several times: its runs and the statistic reported (median or max)."""

    key: str
    label: str
    unit: str
    runs: list[float] = field(default_factory=list)
    statistic: str = "median"

    @property
    def value(self) -> float | None:
        if not self.runs:
            return None
        return max(self.runs) if self.statistic == "max" else median(self.runs)


@dataclass(frozen=True)
class Target:
    """A goal from the issue: ``value`` (or its ratio to the substrate) against a bound."""

    key: str
    bound: float
    higher_is_better: bool = True
    relative_to: str | None = None
    """Key of the measure the value is divided by (a ratio target), or None."""

    def describe(self) -> str:
        sign = "≥" if self.higher_is_better else "≤"
        if self.relative_to == SUBSTRATE:
            return f"{sign} {self.bound:g}x raw INSERT"
        if self.relative_to:
            return f"{sign} {self.bound:g}x {self.relative_to}"
        return f"{sign} {self.bound:g}"

    def actual(self, measures: dict[str, Measure]) -> float | None:
        value = measures[self.key].value if self.key in measures else None
        if value is None or self.relative_to is None:
            return value
        return ratio(value, measures[self.relative_to].value)

    def met(self, measures: dict[str, Measure]) -> bool | None:
        actual = self.actual(measures)
        if actual is None:
            return None
        return actual >= self.bound if self.higher_is_better else actual <= self.bound


def median(values: Sequence[float]) -> float:
    """Return the median of ``values`` (the mean of the middle two for an even count)."""
    if not values:
        raise ValueError("median of no values")
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """Return the ``pct`` percentile by the nearest-rank method (a value that occurred)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def ratio(value: float | None, reference: float | None) -> float | None:
    """Return ``value / reference``, or None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return value / reference


def shares_of_best(values: Mapping[K, float | None]) -> dict[K, float | None]:
    """Return each value divided by the largest of them (None where a value is missing)."""
    best = max((v for v in values.values() if v is not None), default=None)
    return {key: ratio(value, best) for key, value in values.items()}


def format_number(value: float | None, unit: str = "") -> str:
    """Return a short human form: 12345 → '12,345', 2.345 → '2.35', None → 'n/a'."""
    if value is None:
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return f"{text}{unit}" if unit == "x" else f"{text} {unit}".strip()


def rows(measures: dict[str, Measure], targets: Sequence[Target]) -> list[list[str]]:
    """Return one row per measure: label, value, x substrate, target, verdict."""
    by_key = {target.key: target for target in targets}
    reference = measures[SUBSTRATE].value if SUBSTRATE in measures else None
    table = []
    for measure in measures.values():
        target = by_key.get(measure.key)
        relative = ratio(measure.value, reference) if measure.unit == "tasks/s" else None
        verdict = {True: "met", False: "NOT met", None: "n/a"}[target.met(measures)] if target else ""
        table.append(
            [
                measure.label,
                format_number(measure.value, measure.unit),
                f"{relative:.2f}x" if relative is not None else "",
                target.describe() if target else "",
                verdict,
            ]
        )
    return table


HEADER = ["measure", "value", "x raw INSERT", "target", ""]


def text_table(table: list[list[str]], header: Sequence[str] = HEADER) -> str:
    """Return the rows under ``header`` as aligned plain text (for the terminal)."""
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *table]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(table: list[list[str]], header: Sequence[str] = HEADER) -> str:
    """Return the rows under ``header`` as a Markdown table (for docs/performance.md)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    return "\n".join(lines)


def to_json(measures: dict[str, Measure], targets: Sequence[Target], meta: dict[str, Any]) -> dict[str, Any]:
    """Return everything as a JSON-ready dict: meta, each measure's runs and value, each target."""
    return {
        "meta": meta,
        "measures": {
            m.key: {
                "label": m.label,
                "unit": m.unit,
                "statistic": m.statistic,
                "runs": m.runs,
                "value": m.value,
            }
            for m in measures.values()
        },
        "targets": [
            {"measure": t.key, "target": t.describe(), "actual": t.actual(measures), "met": t.met(measures)}
            for t in targets
        ],
    }
