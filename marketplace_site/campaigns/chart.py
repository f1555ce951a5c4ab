"""Units sold per day (or per few days) as an inline SVG bar chart, drawn by
the server: no JavaScript and no external asset, so the page carries all it
needs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from html import escape

from django.utils import timezone

from marketplace_site.campaigns.selectors import SalesBin

WIDTH = 720
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 40
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
MAX_X_LABELS = 6
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


def sales_chart_svg(
    *,
    bars: Sequence[Bar],
    title: str,
    window_label: str = "Campaign",
    axis_label: str = "Units sold per day",
) -> str:
    """One bar per entry of ``bars``, the span of the highlighted ones shaded."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" '
        'class="sales-chart" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
    ]
    if not bars:
        parts.append(
            f'<text x="{WIDTH / 2:g}" y="{HEIGHT / 2:g}" text-anchor="middle">'
            "No days to show yet.</text></svg>"
        )
        return "".join(parts)

    top, step = nice_ceiling(max(bar.units for bar in bars))
    slot = PLOT_WIDTH / len(bars)
    base = TOP + PLOT_HEIGHT

    inside = [i for i, bar in enumerate(bars) if bar.highlighted]
    if inside:
        x = LEFT + inside[0] * slot
        width = (inside[-1] - inside[0] + 1) * slot
        parts.append(
            f'<rect class="campaign-window" x="{x:.1f}" y="{TOP}" width="{width:.1f}" '
            f'height="{PLOT_HEIGHT}" fill="#fdf1d6"/>'
            f'<text class="campaign-label" x="{x + 4:.1f}" y="{TOP - 8}" fill="#8a5a00">'
            f"{escape(window_label)}</text>"
        )

    # Horizontal grid lines with the unit counts at the left.
    for value in range(0, top + 1, step):
        y = base - value / top * PLOT_HEIGHT
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + PLOT_WIDTH}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd"/><text class="y-label" x="{LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{value}</text>'
        )

    bar_width = max(slot * 0.7, 1)
    for i, bar in enumerate(bars):
        height = bar.units / top * PLOT_HEIGHT
        x = LEFT + i * slot + (slot - bar_width) / 2
        parts.append(
            f'<rect class="bar" data-from="{escape(bar.key)}" data-units="{bar.units}" '
            f'x="{x:.1f}" y="{base - height:.1f}" width="{bar_width:.1f}" '
            f'height="{height:.1f}" fill="{"#c77c00" if bar.highlighted else "#6b7f99"}">'
            f"<title>{escape(bar.title)}</title></rect>"
        )

    for i in label_indices(len(bars)):
        x = LEFT + (i + 0.5) * slot
        parts.append(
            f'<text class="x-label" x="{x:.1f}" y="{base + 16}" text-anchor="middle">'
            f"{escape(bars[i].label)}</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{LEFT + PLOT_WIDTH}" y1="{base}" y2="{base}" stroke="#333"/>'
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}" stroke="#333"/>'
        f'<text x="{LEFT + PLOT_WIDTH / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
        f"{escape(axis_label)}</text></svg>"
    )
    return "".join(parts)
