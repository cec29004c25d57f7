"""An SVG bar chart of a benchmark run, written by hand (no plotting library needed).

Three panels: throughput as a multiple of the raw INSERT + COMMIT rate (log scale),
enqueue→start latency in ms, and peak RSS per process in MB. A bar is green when it
meets its target, orange when it does not, grey when it has none; the target is a red
tick on the bar's row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from bench.report import SUBSTRATE, Measure, Target, format_number, ratio

WIDTH = 820
LABEL_WIDTH = 250
PLOT_LEFT = LABEL_WIDTH + 10
PLOT_RIGHT = WIDTH - 150
ROW = 22
COLORS = {True: "#2e7d32", False: "#e65100", None: "#78909c"}


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    target: float | None = None
    met: bool | None = None


@dataclass(frozen=True)
class Panel:
    title: str
    bars: Sequence[Bar]
    log: bool = False

    def scale(self) -> tuple[float, float]:
        top = max([b.value for b in self.bars] + [b.target or 0 for b in self.bars])
        if self.log:
            low = min([b.value for b in self.bars] + [b.target or math.inf for b in self.bars])
            return 10 ** math.floor(math.log10(max(low, 1e-3))), 10 ** math.ceil(math.log10(top))
        return 0.0, top * 1.15 or 1.0

    def position(self) -> Callable[[float], float]:
        low, high = self.scale()
        span = PLOT_RIGHT - PLOT_LEFT
        if self.log:
            lo, hi = math.log10(low), math.log10(high)
            return lambda v: PLOT_LEFT + span * (math.log10(max(v, low)) - lo) / (hi - lo)
        return lambda v: PLOT_LEFT + span * (v - low) / (high - low)


def panels(measures: dict[str, Measure], targets: Sequence[Target]) -> list[Panel]:
    """Build the three panels from a run's measures (measures without a value are left out)."""
    by_key = {t.key: t for t in targets}
    reference = measures[SUBSTRATE].value if SUBSTRATE in measures else None

    def bar(measure: Measure, value: float, text: str) -> Bar:
        target = by_key.get(measure.key)
        return Bar(
            measure.label,
            value,
            text,
            target.bound if target else None,
            target.met(measures) if target else None,
        )

    throughput, latency, memory = [], [], []
    for m in measures.values():
        if m.value is None:
            continue
        if m.unit == "tasks/s" and m.key != SUBSTRATE and (r := ratio(m.value, reference)):
            throughput.append(bar(m, r, f"{r:.2f}x ({format_number(m.value)}/s)"))
        elif m.unit == "ms":
            latency.append(bar(m, m.value, format_number(m.value, "ms")))
        elif m.unit == "MB":
            memory.append(bar(m, m.value, format_number(m.value, "MB")))
    reference_text = format_number(reference)
    return [
        p
        for p in (
            Panel(f"Throughput, x raw INSERT+COMMIT ({reference_text}/s), log scale", throughput, log=True),
            Panel("Enqueue → start latency at 20 tasks/s (ms)", latency),
            Panel("Peak RSS per process (MB)", memory),
        )
        if p.bars
    ]


def svg(panel_list: Sequence[Panel], caption: str) -> str:
    """Return the SVG document of the panels, with ``caption`` under the title."""
    parts: list[str] = []
    y = 52
    for panel in panel_list:
        parts += _panel(panel, y)
        y += 36 + ROW * len(panel.bars) + 26
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" viewBox="0 0 {WIDTH} {y}" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="10" y="20" font-size="15" font-weight="bold">qtasks_django benchmark</text>'
        f'<text x="10" y="38" fill="#555">{escape(caption)}</text>'
    )
    return "\n".join([head, *parts, "</svg>\n"])


def _panel(panel: Panel, top: float) -> list[str]:
    x = panel.position()
    parts = [f'<text x="10" y="{top + 14}" font-weight="bold">{escape(panel.title)}</text>']
    axis_top, axis_bottom = top + 24, top + 28 + ROW * len(panel.bars)
    for tick in _ticks(panel):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{axis_top}" x2="{x(tick):.1f}" y2="{axis_bottom}" stroke="#ddd"/>'
            f'<text x="{x(tick):.1f}" y="{axis_bottom + 13}" text-anchor="middle" fill="#777" '
            f'font-size="10">{tick:g}</text>'
        )
    for index, bar in enumerate(panel.bars):
        y = axis_top + 4 + ROW * index
        parts.append(
            f'<text x="{LABEL_WIDTH}" y="{y + 13}" text-anchor="end">{escape(bar.label)}</text>'
            f'<rect x="{PLOT_LEFT}" y="{y + 2}" width="{max(x(bar.value) - PLOT_LEFT, 1):.1f}" height="{ROW - 6}" '
            f'fill="{COLORS[bar.met]}"/>'
            f'<text x="{x(bar.value) + 4:.1f}" y="{y + 13}" fill="#333">{escape(bar.text)}</text>'
        )
        if bar.target is not None:
            tx = x(bar.target)
            parts.append(
                f'<line x1="{tx:.1f}" y1="{y}" x2="{tx:.1f}" y2="{y + ROW}" stroke="#c62828" stroke-width="2"/>'
            )
    return parts


def _ticks(panel: Panel) -> list[float]:
    low, high = panel.scale()
    if panel.log:
        return [10.0**e for e in range(round(math.log10(low)), round(math.log10(high)) + 1)]
    step = 10 ** math.floor(math.log10(high / 2)) if high > 0 else 1
    return [step * i for i in range(int(high / step) + 1)]
