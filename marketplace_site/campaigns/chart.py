"""Units sold per day as an inline SVG bar chart, drawn by the server: no
JavaScript and no external asset, so the page carries all it needs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from html import escape

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


def _day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def sales_chart_svg(
    *,
    points: Sequence[tuple[date, int]],
    window: tuple[date, date] | None,
    title: str,
    window_label: str = "Campaign",
) -> str:
    """One bar per day of ``points`` (day, units), the ``window`` days shaded."""
    description = title
    if window is not None:
        description += f"; {window_label.lower()} from {window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(description)}" '
        'class="sales-chart" font-family="sans-serif" font-size="11">',
        f"<title>{escape(description)}</title>",
    ]
    if not points:
        parts.append(
            f'<text x="{WIDTH / 2:g}" y="{HEIGHT / 2:g}" text-anchor="middle">'
            "No days to show yet.</text></svg>"
        )
        return "".join(parts)

    top, step = nice_ceiling(max(units for _, units in points))
    slot = PLOT_WIDTH / len(points)
    base = TOP + PLOT_HEIGHT

    if window is not None:
        inside = [i for i, (day, _) in enumerate(points) if window[0] <= day <= window[1]]
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
    for i, (day, units) in enumerate(points):
        height = units / top * PLOT_HEIGHT
        x = LEFT + i * slot + (slot - bar_width) / 2
        in_window = window is not None and window[0] <= day <= window[1]
        parts.append(
            f'<rect class="bar" data-day="{day:%Y-%m-%d}" data-units="{units}" '
            f'x="{x:.1f}" y="{base - height:.1f}" width="{bar_width:.1f}" '
            f'height="{height:.1f}" fill="{"#c77c00" if in_window else "#6b7f99"}">'
            f"<title>{day:%Y-%m-%d}: {units} sold</title></rect>"
        )

    for i in label_indices(len(points)):
        x = LEFT + (i + 0.5) * slot
        parts.append(
            f'<text class="x-label" x="{x:.1f}" y="{base + 16}" text-anchor="middle">'
            f"{escape(_day_label(points[i][0]))}</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{LEFT + PLOT_WIDTH}" y1="{base}" y2="{base}" stroke="#333"/>'
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}" stroke="#333"/>'
        f'<text x="{LEFT + PLOT_WIDTH / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
        "Units sold per day</text></svg>"
    )
    return "".join(parts)
