"""A line chart as inline SVG, drawn on the server: no chart library, no script. Each
point carries a <title>, which browsers show as a tooltip."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 760, 230
LEFT, RIGHT, TOP, BOTTOM = 40, 30, 12, 30


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    values: Sequence[int]


def _nice_top(peak: int) -> tuple[int, int]:
    """A round top of the y axis at or above `peak`, and its tick step (4 ticks)."""
    if peak <= 4:
        return 4, 1
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    step = max(1, math.ceil(step))
    return step * 4, step


def line_chart(labels: Sequence[str], series: Sequence[Series], *, title: str) -> Markup:
    """One line per series over the `labels` (x axis, e.g. days), on a shared y axis."""
    count = len(labels)
    top, step = _nice_top(max((max(s.values, default=0) for s in series), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * v / top

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in range(0, top + 1, step):
        ty = y(tick)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" '
            f'stroke="#e3e7ec" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#5f6b7a">{tick}</text>'
        )
    every = max(1, math.ceil(count / 8))
    for i, label in enumerate(labels):
        if (count - 1 - i) % every == 0:  # evenly spaced, the latest day always labelled
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - 10}" text-anchor="middle" '
                f'fill="#5f6b7a">{escape(label)}</text>'
            )
    for s in series:
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{s.color}" stroke-width="2" '
            'stroke-linejoin="round" stroke-linecap="round"/>'
        )
        for i, v in enumerate(s.values):
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="{3 if v else 2}" fill="{s.color}">'
                f"<title>{escape(labels[i])}: {v} {escape(s.label.lower())}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
