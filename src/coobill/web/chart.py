"""The statistics chart: cost as bars and minutes as a line, drawn as inline SVG on the server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from coobill.services.reports import StatsRow

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 64, 16, 40


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Coordinates for templates/chart.html; the template only draws them."""

    width: int
    height: int
    bars: list[Bar]
    line: str  # the minutes polyline's points
    dots: list[tuple[float, float, str]]
    cost_ticks: list[tuple[float, str]]
    minute_ticks: list[tuple[float, str]]
    baseline: float
    left: int
    right: int


def _nice_max(value: Decimal) -> Decimal:
    """The axis top: 1, 2 or 5 times a power of ten, at least the value."""
    if value <= 0:
        return Decimal(1)
    step = Decimal(1).scaleb(value.adjusted())
    for factor in (1, 2, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10


def build_chart(rows: Sequence[StatsRow]) -> Chart | None:
    """Rows must already be one per period (see services.reports.combined)."""
    if not rows:
        return None
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_cost = _nice_max(max(r.cost for r in rows))
    minutes = [Decimal(r.total_seconds) / 60 for r in rows]
    top_minutes = _nice_max(max(minutes))
    slot = plot_w / len(rows)
    bars, dots = [], []
    base = TOP + plot_h
    for i, (row, mins) in enumerate(zip(rows, minutes, strict=True)):
        height = float(row.cost / top_cost) * plot_h
        x = LEFT + i * slot
        bars.append(
            Bar(
                x + slot * 0.2,
                base - height,
                slot * 0.6,
                height,
                row.period,
                f"{row.period}: {row.cost:f}",
            )
        )
        dots.append(
            (
                x + slot / 2,
                base - float(mins / top_minutes) * plot_h,
                f"{row.period}: {mins.quantize(Decimal('0.1'))} min",
            )
        )
    ticks = [Decimal(i) / 4 for i in range(5)]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        line=" ".join(f"{x:.1f},{y:.1f}" for x, y, _ in dots),
        dots=dots,
        cost_ticks=[(base - float(t) * plot_h, _label(top_cost * t)) for t in ticks],
        minute_ticks=[(base - float(t) * plot_h, _label(top_minutes * t)) for t in ticks],
        baseline=base,
        left=LEFT,
        right=WIDTH - RIGHT,
    )


def _label(value: Decimal) -> str:
    return format(value.normalize(), "f")
