"""The overview's charts, drawn as SVG on the server (pure: values in, SVG text out).

No chart library and no script: the page shows each chart as an ``<img>`` (an SVG image
runs no script at all), and the SVG itself carries no ``<style>`` or ``style=`` (the strict
CSP holds even when the SVG is opened on its own), only presentation attributes.

Every label comes from the audit log and can be written by an attacker: it is XML-escaped,
its bidi overrides, invisible and control characters are shown as ``⟨U+XXXX⟩`` (as the pages
do), and it is clipped to :data:`MAX_LABEL` characters on the chart (whole in its tooltip).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 720
MAX_LABEL = 40
ROW = 22
LABEL_WIDTH = 280
BAR_WIDTH = 300
PALETTE = ("#1a5fb4", "#c01c28", "#2a9d4b", "#e5a50a", "#813d9c", "#865e3c", "#3d3846")
FONT = "system-ui, sans-serif"

# Bidi overrides, invisible format characters and what XML 1.0 cannot carry at all.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff\ufffe\uffff\ud800-\udfff]"
)


def visible(text: str) -> str:
    """``text`` with every unsafe character shown as ``⟨U+XXXX⟩``."""
    return _UNSAFE.sub(lambda m: f"\u27e8U+{ord(m[0]):04X}\u27e9", text)


def text(value: str, limit: int | None = MAX_LABEL) -> str:
    """Attacker-written text as XML character data: visible, clipped, escaped."""
    shown = visible(value)
    if limit is not None and len(shown) > limit:
        shown = shown[: limit - 1] + "\u2026"
    return escape(shown, quote=True)


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value, the note after it, and its colour."""

    label: str
    value: float
    note: str
    colour: str = PALETTE[0]


@dataclass(frozen=True)
class Heading:
    """A group's heading between bars (a dataset above its consumers)."""

    label: str


@dataclass(frozen=True)
class Series:
    """One line of a time chart: a label and a count per bucket."""

    label: str
    counts: tuple[int, ...]


def _svg(title: str, height: int, body: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" font-family="{FONT}" font-size="12">'
        f"<title>{text(title, None)}</title>"
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>'
    )
    return head + "".join(body) + "</svg>"


def _empty(title: str, message: str) -> str:
    return _svg(title, 40, [f'<text x="8" y="24" fill="#444444">{text(message, None)}</text>'])


def bars(title: str, rows: Sequence[Bar | Heading], *, empty: str, widest: float = 0) -> str:
    """Horizontal bars, scaled to ``widest`` (default: the largest value)."""
    values = [r.value for r in rows if isinstance(r, Bar)]
    if not values:
        return _empty(title, empty)
    scale = BAR_WIDTH / (widest or max(values) or 1)
    body: list[str] = []
    for i, row in enumerate(rows):
        y = 8 + i * ROW
        if isinstance(row, Heading):
            body.append(
                f"<g><title>{text(row.label, None)}</title>"
                f'<text x="4" y="{y + 15}" font-weight="bold">{text(row.label, 60)}</text></g>'
            )
            continue
        length = max(row.value * scale, 1.0 if row.value else 0.0)
        body.append(
            f"<g><title>{text(row.label, None)}: {text(row.note, None)}</title>"
            f'<text x="16" y="{y + 15}">{text(row.label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{length:.1f}" height="16" '
            f'fill="{row.colour}"/>'
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 15}" fill="#333333">'
            f"{text(row.note, 24)}</text></g>"
        )
    return _svg(title, 16 + len(rows) * ROW, body)


def lines(title: str, ticks: Sequence[str], series: Sequence[Series], *, empty: str) -> str:
    """Counts per bucket, one line per series, with a legend below; ``ticks`` label buckets."""
    if not series or not ticks:
        return _empty(title, empty)
    left, top, plot_w, plot_h = 56, 12, WIDTH - 72, 180
    peak = _nice(max(max(s.counts, default=0) for s in series))
    step = plot_w / max(len(ticks) - 1, 1)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#888888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888888"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h - fraction * plot_h
        label = round(peak * fraction)
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for i in sorted({0, len(ticks) // 2, len(ticks) - 1}):
        anchor = "start" if i == 0 else "end" if i == len(ticks) - 1 else "middle"
        body.append(
            f'<text x="{left + i * step:.1f}" y="{top + plot_h + 16}" text-anchor="{anchor}">'
            f"{text(ticks[i], None)}</text>"
        )
    for n, line in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        points = " ".join(
            f"{left + i * step:.1f},{top + plot_h - c / peak * plot_h:.1f}"
            for i, c in enumerate(line.counts)
        )
        body.append(
            f"<g><title>{text(line.label, None)}: {sum(line.counts)}</title>"
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/></g>'
        )
        y = top + plot_h + 36 + n * 18
        body.append(
            f'<rect x="{left}" y="{y - 10}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{left + 18}" y="{y}">{text(line.label, 60)} ({sum(line.counts)})</text>'
        )
    return _svg(title, top + plot_h + 36 + len(series) * 18, body)


def _nice(peak: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``peak`` (at least 1)."""
    if peak <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(peak)))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= peak)
