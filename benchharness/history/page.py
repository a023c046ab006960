"""The history page: one self-contained HTML file, a timeline per series, grouped by device.

Each timeline is an inline SVG: the runs in order along x, latency on a log scale along y, every
run's median with its interval, the fitted levels as horizontal lines, and each change point as a
dashed line labelled with its ratio; beside the chart, each change with its interval and the
environment changes at that run. No script, style sheet, font or image is fetched: the page
opens from a mail attachment or a CI artifact as it is. Every text from the results is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchharness import __version__
from benchharness.history.series import EnvChanges, Point
from benchharness.history.timeline import History, SeriesHistory
from benchharness.results.store import atomic_write_text

#: Chart size in SVG units (scaled to the page width by CSS).
WIDTH, HEIGHT = 900, 260
#: Room for the y-axis labels (left), the change labels (top) and the x labels (bottom).
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 28, 34
#: Points drawn as circles up to this many per chart; beyond, as short marks (thousands of runs).
MAX_CIRCLES = 400
#: Y-axis ticks per chart (on the log scale, at round latencies).
TICKS = 5

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fff; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #ccc; }
h3 { font-size: 1rem; margin: 1.2rem 0 0.3rem; }
figure.series { margin: 0 0 1.5rem; }
svg.timeline { width: 100%; max-width: 900px; height: auto; background: #fafafa;
               border: 1px solid #ddd; }
.axis { stroke: #888; stroke-width: 1; } .grid { stroke: #e4e4e4; stroke-width: 1; }
.tick { font-size: 11px; fill: #555; } .ci { stroke: #7aa6d6; stroke-width: 2; }
.pt { fill: #1f5fa8; } .pt.flagged { fill: #d98200; }
.level { stroke: #2a9d3a; stroke-width: 2; opacity: 0.8; }
.change { stroke: #c0392b; stroke-width: 1.5; stroke-dasharray: 5 3; }
.change-label { font-size: 12px; fill: #c0392b; font-weight: bold; }
.change-cause { font-size: 10px; fill: #8e2a1f; }
ul.changes { margin: 0.3rem 0; font-size: 0.9rem; } .none { color: #666; font-size: 0.9rem; }
.meta { color: #555; font-size: 0.9rem; } code { font-size: 0.85rem; }
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


class Scale:
    """Run index -> x, latency (log) -> y, inside the chart's plot area."""

    def __init__(self, n: int, low_ms: float, high_ms: float) -> None:
        self.n = n
        pad = 0.05 * (math.log(high_ms) - math.log(low_ms)) or 0.05
        self.lo = math.log(low_ms) - pad
        self.hi = math.log(high_ms) + pad

    def x(self, i: float) -> float:
        span = WIDTH - LEFT - RIGHT
        return LEFT + (span / 2 if self.n <= 1 else span * i / (self.n - 1))

    def y(self, ms: float) -> float:
        frac = (math.log(ms) - self.lo) / (self.hi - self.lo)
        return TOP + (1.0 - frac) * (HEIGHT - TOP - BOTTOM)


def _bounds(points: Sequence[Point]) -> tuple[float, float]:
    lows = [p.ci_low_ms or p.median_ms for p in points] + [p.median_ms for p in points]
    highs = [p.ci_high_ms or p.median_ms for p in points] + [p.median_ms for p in points]
    return min(v for v in lows if v > 0), max(highs)


#: Above this ratio of the y range's ends, ticks go by decades (1-2-5); below, evenly.
DECADE_RANGE = 3.0
#: Nice steps of evenly spaced ticks, times a power of ten.
NICE_STEPS = (1.0, 2.0, 5.0, 10.0)


def _ticks(scale: Scale) -> list[float]:
    """Round latencies over the y range, at most about TICKS of them: 1-2-5 per decade on a
    wide range, an even 1-2-5 step on a narrow one (a 10 % step spans no decade)."""
    lo, hi = math.exp(scale.lo), math.exp(scale.hi)
    if hi / lo > DECADE_RANGE:
        exponents = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
        out = [m * 10.0**e for e in exponents for m in (1.0, 2.0, 5.0) if lo <= m * 10.0**e <= hi]
        return out[:: math.ceil(len(out) / TICKS)] if len(out) > TICKS else out
    raw = (hi - lo) / (TICKS - 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(n * magnitude for n in NICE_STEPS if n * magnitude >= raw)
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def _tick_label(ms: float) -> str:
    return f"{ms:.4g} ms"


def _point_title(p: Point) -> str:
    interval = (
        f" [{p.ci_low_ms:.4g}, {p.ci_high_ms:.4g}]"
        if p.ci_low_ms is not None and p.ci_high_ms is not None
        else ""
    )
    flags = f"\nflags: {', '.join(p.flags)}" if p.flags else ""
    return f"{p.run_id} {p.date}\nmedian {p.median_ms:.4g} ms{interval}{flags}"


#: Characters of the cause written beside a change line (the list under the chart has it all).
CAUSE_CHARS = 40
#: SVG units a change's ratio label and its cause need before the next change line.
RATIO_WIDTH, CAUSE_WIDTH = 40, 120


def _cause_label(causes: EnvChanges) -> str:
    text = ", ".join(causes) or "no env change"
    return text if len(text) <= CAUSE_CHARS else text[: CAUSE_CHARS - 3] + "..."


def _mark(x: float, y: float, cls: str, circle: bool, point: Point) -> str:
    """One run's median: a circle, or a small square when the chart holds thousands."""
    title = f"<title>{esc(_point_title(point))}</title>"
    if circle:
        return f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="3.5">{title}</circle>'
    return (
        f'<rect class="{cls}" x="{x - 1:.1f}" y="{y - 1:.1f}" width="2" height="2">{title}</rect>'
    )


def svg_timeline(series: SeriesHistory) -> str:
    points = series.points
    low, high = _bounds(points)
    scale = Scale(len(points), low, high)
    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{esc(series.key.label)}">'
    ]
    for tick in _ticks(scale):
        y = scale.y(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{esc(_tick_label(tick))}</text>"
        )
    base = HEIGHT - BOTTOM
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}"/>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>')
    for end in {0, len(points) - 1}:
        anchor = "start" if end == 0 and len(points) > 1 else "end" if end else "middle"
        parts.append(
            f'<text class="tick" x="{scale.x(end):.1f}" y="{base + 16}" text-anchor="{anchor}">'
            f"{esc(points[end].run_id)}</text>"
        )
    for seg in series.fit.segments:
        x1, x2 = scale.x(seg.start - 0.4), scale.x(seg.stop - 1 + 0.4)
        y = scale.y(seg.latency)
        parts.append(
            f'<line class="level" x1="{max(x1, LEFT):.1f}" x2="{min(x2, WIDTH - RIGHT):.1f}" '
            f'y1="{y:.1f}" y2="{y:.1f}"><title>{esc(f"level {seg.latency:.4g} ms")}</title></line>'
        )
    circles = len(points) <= MAX_CIRCLES
    for i, p in enumerate(points):
        x = scale.x(i)
        if p.ci_low_ms is not None and p.ci_high_ms is not None:
            parts.append(
                f'<line class="ci" x1="{x:.1f}" x2="{x:.1f}" y1="{scale.y(p.ci_high_ms):.1f}" '
                f'y2="{scale.y(p.ci_low_ms):.1f}"/>'
            )
        parts.append(_mark(x, scale.y(p.median_ms), "pt flagged" if p.flags else "pt", circles, p))
    xs = [(scale.x(c.index - 1) + scale.x(c.index)) / 2 for c in series.changes]
    for i, (change, x) in enumerate(zip(series.changes, xs, strict=True)):
        parts.append(
            f'<line class="change" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{base}">'
            f"<title>{esc(change.cause_text())}</title></line>"
        )
        # labels only where they fit between the change lines (the list below has every one)
        after = (xs[i + 1] if i + 1 < len(xs) else WIDTH) - x
        before = x - (xs[i - 1] if i else LEFT)
        if min(after, before) >= RATIO_WIDTH / 2:
            parts.append(
                f'<text class="change-label" x="{x:.1f}" y="{TOP - 8}" text-anchor="middle">'
                f"x{change.step.ratio:.2f}</text>"
            )
        cause = esc(_cause_label(change.causes))
        if after >= CAUSE_WIDTH:
            parts.append(
                f'<text class="change-cause" x="{x + 4:.1f}" y="{TOP + 12}">{cause}</text>'
            )
        elif before >= CAUSE_WIDTH:  # near the right edge: written to the left of the line
            parts.append(
                f'<text class="change-cause" x="{x - 4:.1f}" y="{TOP + 12}" text-anchor="end">'
                f"{cause}</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _changes_list(series: SeriesHistory) -> str:
    if not series.changes:
        return '<p class="none">No change point.</p>'
    items = []
    for c in series.changes:
        s = c.step
        items.append(
            f"<li>run <code>{esc(c.point.run_id)}</code> ({esc(c.point.date or 'undated')}): "
            f"<b>x{s.ratio:.3f}</b> [{s.low:.3f}, {s.high:.3f}] &mdash; "
            f"{esc(c.cause_text())}</li>"
        )
    return '<ul class="changes">' + "".join(items) + "</ul>"


def _series_figure(series: SeriesHistory) -> str:
    k = series.key
    title = f"{k.model} {k.format}/{k.precision} {k.runtime} t{k.threads}".replace(" tNone", "")
    return (
        f'<figure class="series" data-series="{esc(k.label)}">'
        f"<h3>{esc(title)}</h3>"
        f'<p class="meta">{esc(series.summary())}, '
        f"latest median {series.points[-1].median_ms:.4g} ms</p>"
        f"{svg_timeline(series)}{_changes_list(series)}</figure>"
    )


def render_page(history: History, *, now: datetime | None = None) -> str:
    """The page as one HTML text (see the module docstring)."""
    now = now or datetime.now(UTC)
    devices: dict[str, list[SeriesHistory]] = {}
    for s in history.series:
        devices.setdefault(s.key.device, []).append(s)
    sections = []
    for device, members in devices.items():
        figures = "\n".join(_series_figure(s) for s in members)
        sections.append(
            f'<section class="device" id="device-{esc(device)}"><h2>{esc(device)}</h2>'
            f"{figures}</section>"
        )
    warnings = "".join(f"<li>{esc(w)}</li>" for w in history.warnings)
    warning_list = f'<ul class="meta">{warnings}</ul>' if warnings else ""
    runs = len({p.run_id for s in history.series for p in s.points})
    generated = now.isoformat(timespec="seconds")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Latency history: {esc(history.results_dir)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Latency history</h1>"
        f'<p class="meta">{len(history.series)} series over {runs} runs in '
        f"<code>{esc(history.results_dir)}</code>; generated {esc(generated)}"
        f" by bench {esc(__version__)}. Dots: each run's median, bars: its interval, green: the "
        f"fitted levels, dashed red: change points (ratio after/before).</p>"
        f"{warning_list}{''.join(sections)}</body></html>\n"
    )


def write_page(history: History, path: Path) -> Path:
    """Write the page to ``path`` atomically; return it."""
    atomic_write_text(path, render_page(history))
    return path
