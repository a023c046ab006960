"""The memory figure: measured peak against the estimate, log-log, with y = x and the budgets."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from benchharness.report.memory import MIB, MemoryPoint
from benchharness.report.plots import LOG_LABEL_STEPS, OP_COLORS, Plot, to_png


def _txt(text: str) -> str:
    """Text for matplotlib: a '$' in a model name must not start mathtext."""
    return text.replace("$", r"\$")


def memory_plot(points: Sequence[MemoryPoint]) -> Plot | None:
    have = [p for p in points if p.estimate_bytes and p.peak_bytes > 0]
    if not have:
        return None
    fig = Figure(figsize=(8, 5.5))
    ax = fig.add_subplot()
    series = list(dict.fromkeys(p.series for p in have))
    for i, name in enumerate(series):
        mine = [p for p in have if p.series == name]
        ax.scatter(
            [(p.estimate_bytes or 0) / MIB for p in mine], [p.peak_bytes / MIB for p in mine],
            color=OP_COLORS[i % len(OP_COLORS)], label=_txt(name), zorder=3, s=28,
        )  # fmt: skip
        for j, p in enumerate(mine):
            ax.annotate(
                _txt(p.model), ((p.estimate_bytes or 0) / MIB, p.peak_bytes / MIB),
                textcoords="offset points", xytext=(5, 4 if j % 2 == 0 else -11), fontsize=7,
            )  # fmt: skip
    xs = [(p.estimate_bytes or 0) / MIB for p in have]
    ys = [p.peak_bytes / MIB for p in have]
    lo, hi = min(xs + ys), max(xs + ys)
    ax.plot([lo, hi], [lo, hi], color="#555555", lw=1, ls="--", label="peak = estimate")
    for budget in sorted({p.budget_bytes for p in have if p.budget_bytes}):
        ax.axhline(budget / MIB, color="#d62728", lw=1, label=f"budget {budget / MIB:g} MiB")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=LOG_LABEL_STEPS))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("estimate: weights + peak activations (MiB)")
    ax.set_ylabel("measured peak (MiB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Measured peak memory vs the static estimate", fontsize=10)
    return Plot(
        "memory",
        "Measured peak memory vs estimate",
        "log-log scatter of measured peak memory against weights plus peak activations",
        to_png(fig),
    )
