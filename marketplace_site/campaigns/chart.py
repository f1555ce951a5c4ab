"""Units sold per day (or per few days) as an inline SVG bar chart, drawn by
the server: no JavaScript and no external asset, so the page carries all it
needs. Here the geometry; the template (templates/campaigns/sales_chart.svg)
draws it, escaping every text as any template does."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.template.loader import render_to_string
from django.utils import timezone

from marketplace_site.campaigns.selectors import SalesBin

WIDTH = 720
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 40
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
MAX_X_LABELS = 6
CHART_TEMPLATE = "campaigns/sales_chart.svg"
Y_TICKS = 4


def nice_ceiling(value: int, ticks: int = Y_TICKS) -> tuple[int, int]:
    """(top of the axis, step between ticks): whole units, steps of 1, 2 or 5 x 10^k."""
    if value <= 0:
        return 1, 1
    raw = value / ticks
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(value / step), step


def label_indices(count: int, most: int = MAX_X_LABELS) -> list[int]:
    """Evenly spread positions to label, always the first and the last."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


@dataclass(frozen=True, slots=True)
class Bar:
    key: str  # its data-from attribute: when its span starts
    label: str  # under the bar (a few are labelled)
    title: str  # what it counts, as its tooltip
    units: int
    highlighted: bool  # in the campaign window


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment:%b}"


def span_text(starts_at: datetime, ends_at: datetime) -> str:
    """A bin's span in the shop's time zone, as short as it can say it:
    "10 Mar 2025", "10 Mar to 16 Mar 2025", "10 Mar 2025, 12:00 to 24:00"."""
    start, end = timezone.localtime(starts_at), timezone.localtime(ends_at)
    last = timezone.localtime(ends_at - timedelta(microseconds=1))
    if start.time() == end.time() == time.min:
        if start.date() == last.date():
            return f"{_day(start)} {start:%Y}"
        return f"{_day(start)} to {_day(last)} {last:%Y}"
    until = "24:00" if end.time() == time.min else f"{end:%H:%M}"
    if start.date() == last.date():
        return f"{_day(start)} {start:%Y}, {start:%H:%M} to {until}"
    return f"{_day(start)} {start:%Y}, {start:%H:%M} to {_day(last)} {last:%Y}, {until}"


def report_bars(bins: Sequence[SalesBin]) -> list[Bar]:
    """A campaign report's bins as bars, each labelled by where it starts."""
    bars = []
    for sales_bin in bins:
        start = timezone.localtime(sales_bin.starts_at)
        label = _day(start) if start.time() == time.min else f"{_day(start)} {start:%H:%M}"
        bars.append(
            Bar(
                key=start.isoformat(),
                label=label,
                title=f"{span_text(sales_bin.starts_at, sales_bin.ends_at)}: "
                f"{sales_bin.units} sold",
                units=sales_bin.units,
                highlighted=sales_bin.in_campaign,
            )
        )
    return bars


@dataclass(frozen=True, slots=True)
class DrawnBar:
    bar: Bar
    x: str
    y: str
    width: str
    height: str
    fill: str


@dataclass(frozen=True, slots=True)
class Tick:
    value: int
    y: str  # the grid line's
    label_y: str


@dataclass(frozen=True, slots=True)
class XLabel:
    text: str
    x: str


@dataclass(frozen=True, slots=True)
class Window:
    """The shaded span of the highlighted bars."""

    x: str
    width: str
    label: str
    label_x: str


@dataclass(frozen=True, slots=True)
class SalesChart:
    """Where everything of the chart goes; templates/campaigns/sales_chart.svg
    draws it (and escapes every text)."""

    title: str
    axis_label: str
    bars: list[DrawnBar]
    ticks: list[Tick]
    x_labels: list[XLabel]
    window: Window | None
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = LEFT + PLOT_WIDTH
    top: int = TOP
    base: int = TOP + PLOT_HEIGHT
    plot_height: int = PLOT_HEIGHT
    middle_x: str = f"{LEFT + PLOT_WIDTH / 2:.1f}"
    window_label_y: int = TOP - 8
    x_label_y: int = TOP + PLOT_HEIGHT + 16
    axis_label_y: int = HEIGHT - 6


def sales_chart(
    *,
    bars: Sequence[Bar],
    title: str,
    window_label: str = "Campaign",
    axis_label: str = "Units sold per day",
) -> SalesChart:
    """One bar per entry of ``bars``, the span of the highlighted ones shaded."""
    if not bars:
        return SalesChart(title, axis_label, bars=[], ticks=[], x_labels=[], window=None)
    top, step = nice_ceiling(max(bar.units for bar in bars))
    slot = PLOT_WIDTH / len(bars)
    base = TOP + PLOT_HEIGHT
    inside = [i for i, bar in enumerate(bars) if bar.highlighted]
    window = None
    if inside:
        x = LEFT + inside[0] * slot
        window = Window(
            x=f"{x:.1f}",
            width=f"{(inside[-1] - inside[0] + 1) * slot:.1f}",
            label=window_label,
            label_x=f"{x + 4:.1f}",
        )
    ticks = []
    for value in range(0, top + 1, step):
        y = base - value / top * PLOT_HEIGHT
        ticks.append(Tick(value, y=f"{y:.1f}", label_y=f"{y + 4:.1f}"))
    bar_width = max(slot * 0.7, 1)
    drawn = []
    for i, bar in enumerate(bars):
        height = bar.units / top * PLOT_HEIGHT
        drawn.append(
            DrawnBar(
                bar,
                x=f"{LEFT + i * slot + (slot - bar_width) / 2:.1f}",
                y=f"{base - height:.1f}",
                width=f"{bar_width:.1f}",
                height=f"{height:.1f}",
                fill="#c77c00" if bar.highlighted else "#6b7f99",
            )
        )
    x_labels = [
        XLabel(bars[i].label, x=f"{LEFT + (i + 0.5) * slot:.1f}") for i in label_indices(len(bars))
    ]
    return SalesChart(title, axis_label, drawn, ticks, x_labels, window)


def sales_chart_svg(chart: SalesChart) -> str:
    """``chart`` drawn: SVG markup, every text escaped."""
    return render_to_string(CHART_TEMPLATE, {"chart": chart})
