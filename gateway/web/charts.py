"""Server-rendered charts: inline SVG, no JavaScript, with a text alternative.

Invariants:
- every chart is an ``<svg role="img">`` labelled by its own ``<title>`` and ``<desc>``,
  and the page shows the same numbers in a table beside it (``Chart.table``), so a
  screen reader or a text browser loses nothing;
- all text placed in the SVG is escaped;
- colours are the Okabe–Ito palette (distinguishable with the common colour-vision
  deficiencies), every colour has a legend entry with its name, and bars carry a
  ``<title>`` with their exact value.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#6b6b00",  # dark olive (the palette's yellow is too light on white)
    "#000000",
)
_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    """One named row of values, one value per label of the chart."""

    name: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Chart:
    """A rendered chart and the numbers it shows (for the table beside it)."""

    svg: Markup
    labels: tuple[str, ...]
    series: tuple[Series, ...]

    def table(self) -> list[tuple[str, list[float]]]:
        """Rows of (label, [value per series])."""
        return [(label, [s.values[i] for s in self.series]) for i, label in enumerate(self.labels)]


def _svg(parts: list[str]) -> Markup:
    # Safe: every piece of text in ``parts`` went through ``escape``; the rest is our
    # own markup with numbers.
    return Markup("".join(parts))  # noqa: S704 - see the comment above


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}"


def _scale_max(values: Sequence[float]) -> float:
    top = max([0.0, *values])
    if top <= 0:
        return 1.0
    # A round upper bound: 1, 2, 5 × 10^k.
    magnitude = 1.0
    while magnitude * 10 <= top:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= top:
            return step * magnitude
    return 10 * magnitude


def _frame(title: str, desc: str, width: int, height: int) -> tuple[str, list[str]]:
    n = next(_ids)
    tid, did = f"chart-{n}-title", f"chart-{n}-desc"
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="100%" '
        f'aria-labelledby="{tid} {did}">',
        f'<title id="{tid}">{escape(title)}</title>',
        f'<desc id="{did}">{escape(desc)}</desc>',
    ]
    return tid, head


def bar_chart(*, title: str, desc: str, labels: Sequence[str], values: Sequence[float]) -> Chart:
    """Horizontal bars, one per label (long labels such as department names fit)."""
    if len(labels) != len(values):
        raise ValueError("one value per label")
    row, label_w, plot_w, pad = 28, 220, 420, 8
    width = label_w + plot_w + 70
    height = max(1, len(labels)) * row + 2 * pad
    top = _scale_max(values)
    _, out = _frame(title, desc, width, height)
    if not labels:
        out.append(f'<text x="{pad}" y="{row}" class="chart-empty">–</text>')
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = pad + i * row
        w = 0 if top == 0 else round(plot_w * v / top, 1)
        out.append(
            f'<text x="{label_w - 8}" y="{y + row * 0.65:.1f}" text-anchor="end" '
            f'class="chart-label">{escape(label)}</text>'
        )
        out.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{w}" height="{row - 8}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {_fmt(v)}</title></rect>'
        )
        out.append(
            f'<text x="{label_w + w + 6}" y="{y + row * 0.65:.1f}" '
            f'class="chart-value">{_fmt(v)}</text>'
        )
    out.append("</svg>")
    return Chart(_svg(out), tuple(labels), (Series(title, tuple(values)),))


def column_chart(
    *, title: str, desc: str, labels: Sequence[str], series: Sequence[Series]
) -> Chart:
    """Stacked columns, one per label (days), one colour per series, with a legend."""
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r}: one value per label")
    if len(series) > len(PALETTE):
        raise ValueError(f"at most {len(PALETTE)} series")
    left, right, top_pad, axis_h, legend_h = 48, 12, 12, 40, 26 * ((len(series) + 2) // 3)
    plot_h = 200
    col = max(14, min(48, 640 // max(1, len(labels))))
    width = left + right + col * max(1, len(labels))
    width = max(width, 520)
    height = top_pad + plot_h + axis_h + legend_h
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = _scale_max(totals)
    _, out = _frame(title, desc, width, height)
    base_y = top_pad + plot_h
    # Axis with three gridlines.
    for frac in (0.0, 0.5, 1.0):
        y = base_y - plot_h * frac
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="chart-grid"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="chart-value">'
            f"{_fmt(top * frac)}</text>"
        )
    every = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        x = left + i * col
        y = base_y
        for k, s in enumerate(series):
            v = s.values[i]
            if v <= 0:
                continue
            h = plot_h * v / top
            y -= h
            out.append(
                f'<rect x="{x + 2}" y="{y:.1f}" width="{col - 4}" height="{h:.1f}" '
                f'fill="{PALETTE[k]}"><title>{escape(label)} · {escape(s.name)}: {_fmt(v)}'
                "</title></rect>"
            )
        if i % every == 0:
            out.append(
                f'<text x="{x + col / 2:.1f}" y="{base_y + 16}" text-anchor="middle" '
                f'class="chart-label">{escape(label)}</text>'
            )
    for k, s in enumerate(series):
        lx = left + (k % 3) * 170
        ly = base_y + axis_h + (k // 3) * 26
        out.append(f'<rect x="{lx}" y="{ly - 11}" width="14" height="14" fill="{PALETTE[k]}"/>')
        out.append(f'<text x="{lx + 20}" y="{ly + 1}" class="chart-label">{escape(s.name)}</text>')
    out.append("</svg>")
    return Chart(_svg(out), tuple(labels), tuple(series))
