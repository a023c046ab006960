"""The report's figures, drawn with matplotlib's Agg backend and returned as PNG bytes.

Figures are built with the object API (``matplotlib.figure.Figure``), never pyplot, so no global
figure state leaks between reports and nothing needs a display. What every figure shares (the
backend, palette, axes and ``Plot``) is in ``drawing``; the memory figure in ``memory_plot``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from benchharness.report.drawing import (
    COLOR_FLAGGED,
    COLOR_OK,
    OP_COLORS,
    Plot,
    log_log,
    mpl_text,
    to_png,
)
from benchharness.report.figures import (
    Analysis,
    CrossDevice,
    OpBreakdown,
    Point,
    Series,
    SeriesKey,
    point_label,
)
from benchharness.report.fits import Correlation, Fit
from benchharness.report.memory_plot import memory_plot

#: Operator types drawn individually in the share bars; the rest are summed as "other".
TOP_OP_TYPES = 9
#: Markers of a native and of an emulated point: a translated CPU's timing must not be read as
#: the board's, even on a plot printed without its legend.
MARKER_NATIVE = "o"
MARKER_EMULATED = "X"
#: The flag every emulated row carries; its marker says it, so it alone does not add the "!".
EMULATED_FLAG = "EMULATED"


@dataclass(frozen=True)
class PointStyle:
    """How a point is drawn: its marker, hollow when flagged, and what its label gets."""

    marker: str
    hollow: bool
    suffix: str


def point_style(p: Point) -> PointStyle:
    flagged = any(f != EMULATED_FLAG for f in p.flags)
    suffix = (f" [emulated: {p.emulated}]" if p.emulated else "") + (" !" if flagged else "")
    return PointStyle(MARKER_EMULATED if p.emulated else MARKER_NATIVE, flagged, suffix)


class _Line(Protocol):
    slope: float
    r2: float

    def predict(self, x: float) -> float: ...


def _corr_text(name: str, corr: Correlation | None, n: int) -> str:
    if corr is None:
        return f"{name}: too few points for rank correlation (n={n})"
    return f"{name}: Spearman ρ = {corr.spearman:.3f}, Kendall τ = {corr.kendall:.3f} (n={n})"


def _iqr_bar(p: Point) -> tuple[float, float]:
    """Distances below and above the median to q1 and q3.

    From the raw samples when the run kept them; otherwise half the IQR each way, with the lower
    half dropped where it would reach zero (a log axis cannot show it).
    """
    if p.q1_ms is not None and p.q3_ms is not None:
        return max(p.median_ms - p.q1_ms, 0.0), max(p.q3_ms - p.median_ms, 0.0)
    half = (p.iqr_ms or 0.0) / 2
    return (half if half < p.median_ms else 0.0), half


def _scatter(
    ax: Axes,
    series: Series,
    xs_of: dict[int, float],
    xlabel: str,
) -> None:
    """Median latency against ``xs_of[id(point)]``, IQR bars, labels and variant lines."""
    pts = [p for p in series.points if id(p) in xs_of]
    for group in series.variants:
        members = [p for p in group.points if id(p) in xs_of]
        if len(members) > 1:
            ax.plot(
                [xs_of[id(p)] for p in members],
                [p.median_ms for p in members],
                color="#999999",
                lw=1,
                ls="--",
                zorder=1,
            )
    for i, p in enumerate(pts):
        x = xs_of[id(p)]
        low, high = _iqr_bar(p)
        style = point_style(p)
        color = COLOR_FLAGGED if style.hollow else COLOR_OK
        ax.errorbar(
            [x], [p.median_ms], yerr=[[low], [high]], fmt=style.marker, color=color,
            ms=7 if p.emulated else 6, capsize=3, zorder=3, mfc="white" if style.hollow else color,
        )  # fmt: skip
        # alternate label offsets so neighbours with similar x do not print over each other
        offset = (5, 4) if i % 2 == 0 else (5, -11)
        ax.annotate(
            mpl_text(point_label(p, series.points) + style.suffix), (x, p.median_ms),
            textcoords="offset points", xytext=offset, fontsize=8,
        )  # fmt: skip
    log_log(ax, xlabel, "median latency (ms, bars: IQR)")


def _fit_line(ax: Axes, fit: _Line, xs: Sequence[float]) -> None:
    if not xs:
        return
    lo, hi = min(xs), max(xs)
    steps = 20  # the line is straight on log-log axes; points only keep it inside the data
    grid = [lo * (hi / lo) ** (i / steps) for i in range(steps + 1)] if hi > lo else [lo]
    ax.plot(
        grid,
        [fit.predict(x) for x in grid],
        color="#555555",
        lw=1.2,
        zorder=2,
        label=f"fit: latency ∝ x^{fit.slope:.2f} (R² = {fit.r2:.2f})",
    )
    ax.legend(loc="lower right", fontsize=8)


def _latency_vs(
    series: Series,
    values: dict[int, float],
    *,
    what: str,
    scale: float,
    xlabel: str,
    fit: Fit | None,
    corr: Correlation | None,
    alt: str,
) -> Plot:
    """Median latency against ``what`` (``values`` by point id, drawn divided by ``scale``)."""
    xs = {k: v / scale for k, v in values.items()}
    fig = Figure(figsize=(8, 5.5))
    ax = fig.add_subplot()
    _scatter(ax, series, xs, xlabel)
    if fit is not None:
        _fit_line(ax, _ScaledFit(fit, scale), list(xs.values()))
    ax.set_title(
        f"Latency vs {what} — {mpl_text(series.key.label)}\n" + _corr_text(what, corr, len(xs)),
        fontsize=10,
    )
    return Plot(
        f"latency-{what.lower()}-{series.key.slug}",
        f"Latency vs {what}: {series.key.label}",
        alt,
        to_png(fig),
    )


def latency_vs_macs(series: Series) -> Plot | None:
    have = {id(p): float(p.macs) for p in series.points if p.macs and p.macs > 0}
    if not have:
        return None
    return _latency_vs(
        series, have, what="MACs", scale=1e9,
        xlabel="GMACs (multiply-accumulates, paper convention)", fit=series.fit,
        corr=series.corr_macs,
        alt=f"log-log scatter of median latency against MACs for {series.key.label}",
    )  # fmt: skip


def latency_vs_bytes(series: Series) -> Plot | None:
    have = {id(p): float(p.traffic_bytes) for p in series.points if p.traffic_bytes}
    if not have:
        return None
    source = {
        "ops": "sum of per-operator bytes",
        "estimate": "model + activation bytes",
        "mixed": "mixed sources",
    }.get(series.bytes_source, "")
    return _latency_vs(
        series, have, what="bytes", scale=1e6, xlabel=f"memory traffic (MB, {source})",
        fit=series.fit_bytes, corr=series.corr_bytes,
        alt=f"log-log scatter of median latency against memory traffic, {series.key.label}",
    )  # fmt: skip


class _ScaledFit:
    """A fit in raw units drawn on an axis in scaled units (GMACs, MB)."""

    def __init__(self, fit: Fit, scale: float) -> None:
        self.fit = fit
        self.scale = scale
        self.slope = fit.slope
        self.r2 = fit.r2

    def predict(self, x: float) -> float:
        return self.fit.predict(x * self.scale)


def gmacs_bars(series: Series) -> Plot | None:
    pts = series.by_gmacs
    if not pts:
        return None
    fig = Figure(figsize=(8, 0.9 + 0.35 * len(pts)))
    ax = fig.add_subplot()
    styles = [point_style(p) for p in pts]
    labels = [
        mpl_text(point_label(p, series.points) + s.suffix) for p, s in zip(pts, styles, strict=True)
    ]
    values = [p.gmacs_per_s or 0.0 for p in pts]
    colors = [COLOR_FLAGGED if s.hollow else COLOR_OK for s in styles]
    bars = ax.barh(range(len(pts)), values, color=colors)
    for bar, p in zip(bars, pts, strict=True):
        if p.emulated:
            bar.set_hatch("xx")
    ax.set_yticks(range(len(pts)), labels, fontsize=8)
    ax.invert_yaxis()  # fastest on top
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.1f}", va="center", fontsize=8)
    ax.set_xlabel("achieved GMAC/s (MACs / median latency)")
    ax.set_title(f"Achieved compute rate — {mpl_text(series.key.label)}", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return Plot(
        f"gmacs-{series.key.slug}",
        f"Achieved GMAC/s: {series.key.label}",
        f"bar chart of achieved GMAC/s per model, sorted, {series.key.label}",
        to_png(fig),
    )


def op_share_bars(breakdowns: Sequence[OpBreakdown], title: str, slug: str) -> Plot | None:
    """Per model three stacked bars: share of time, of MACs and of bytes by operator type."""
    if not breakdowns:
        return None
    totals: dict[str, float] = {}
    for b in breakdowns:
        for s in b.shares:
            totals[s.op_type] = totals.get(s.op_type, 0.0) + s.time_share + (s.macs_share or 0.0)
    top = [t for t, _ in sorted(totals.items(), key=lambda kv: -kv[1])[:TOP_OP_TYPES]]
    kinds = [*top, "other"] if len(totals) > len(top) else top
    measures = (("time", "time_share"), ("MACs", "macs_share"), ("bytes", "bytes_share"))
    fig = Figure(figsize=(max(6.0, 1.6 * len(breakdowns) + 3), 5.5))
    ax = fig.add_subplot()
    width = 0.27
    ticks, ticklabels = [], []
    for i, b in enumerate(breakdowns):
        for j, (mlabel, attr) in enumerate(measures):
            x = i + (j - 1) * width
            ticks.append(x)
            ticklabels.append(mlabel)
            shares = {s.op_type: getattr(s, attr) for s in b.shares}
            if all(v is None for v in shares.values()):
                ax.text(x, 0.02, "n/a", ha="center", fontsize=7, rotation=90)
                continue
            bottom = 0.0
            for k, kind in enumerate(kinds):
                if kind == "other":
                    value = sum(v or 0.0 for t, v in shares.items() if t not in top)
                else:
                    value = shares.get(kind) or 0.0
                if value > 0:
                    ax.bar(
                        x, value, width * 0.95, bottom=bottom, color=OP_COLORS[k % len(OP_COLORS)]
                    )
                    bottom += value
        ax.text(i, 1.03, mpl_text(b.model), ha="center", fontsize=8, rotation=0)
    ax.set_xticks(ticks, ticklabels, fontsize=7, rotation=90)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share of the model's total")
    handles = [
        Patch(color=OP_COLORS[k % len(OP_COLORS)], label=kind) for k, kind in enumerate(kinds)
    ]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(mpl_text(title), fontsize=10)
    return Plot(
        slug,
        title,
        f"stacked bars of operator-type shares of time, MACs and bytes: {title}",
        to_png(fig),
    )


def _device(key: SeriesKey) -> str:
    return f"{key.device} [{key.platform}]" if key.platform else key.device


def cross_device_chart(pairs: Sequence[CrossDevice]) -> Plot | None:
    if not pairs:
        return None
    fig = Figure(figsize=(8, 2.0 + sum(0.3 * len(c.ratios) + 0.8 for c in pairs)))
    axes = fig.subplots(len(pairs), 1, squeeze=False)[:, 0]
    for ax, c in zip(axes, pairs, strict=True):
        ratios = sorted(c.ratios, key=lambda r: r[1])
        ax.barh(range(len(ratios)), [r for _, r in ratios], color=COLOR_OK)
        ax.set_yticks(range(len(ratios)), [mpl_text(m) for m, _ in ratios], fontsize=8)
        ax.axvline(1.0, color="#333333", lw=1)
        if c.geomean_ratio is not None:
            ax.axvline(
                c.geomean_ratio,
                color=COLOR_FLAGGED,
                lw=1,
                ls="--",
                label=f"geometric mean {c.geomean_ratio:.2f}×",
            )
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xscale("log")
        tau = f"Kendall τ = {c.kendall:.2f}" if c.kendall is not None else "τ: too few models"
        changed = "ranking changes" if c.ranking_changed else "same ranking"
        ax.set_title(
            mpl_text(
                f"{_device(c.other)} / {_device(c.reference)} ({c.reference.runtime}, "
                f"{c.reference.format}): {tau}, {changed}"
            ),
            fontsize=9,
        )
        ax.set_xlabel("latency ratio (>1: slower than the reference device)")
    fig.tight_layout()
    return Plot(
        "cross-device",
        "Cross-device latency ratios",
        "bar charts of per-model latency ratios between devices",
        to_png(fig),
    )


def series_plots(series: Series) -> list[Plot]:
    return [p for p in (latency_vs_macs(series), gmacs_bars(series), latency_vs_bytes(series)) if p]


def all_plots(analysis: Analysis) -> list[Plot]:
    """Every figure of the report, in reading order."""
    plots: list[Plot] = []
    for s in analysis.series:
        plots.extend(series_plots(s))
        ops = [b for b in analysis.op_breakdowns if b.key == s.key]
        share = op_share_bars(ops, f"Operator-type shares — {s.key.label}", f"ops-{s.key.slug}")
        if share:
            plots.append(share)
    cross = cross_device_chart(analysis.cross_device)
    if cross:
        plots.append(cross)
    memory = memory_plot(analysis.memory)
    if memory:
        plots.append(memory)
    return plots
