"""The memory figure: measured peak against the estimate, log-log, with y = x and the budgets."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from benchharness.report.drawing import OP_COLORS, Plot, log_log, mpl_text, to_png
from benchharness.report.memory_section import MIB, MemoryPoint


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
            color=OP_COLORS[i % len(OP_COLORS)], label=mpl_text(name), zorder=3, s=28,
        )  # fmt: skip
        for j, p in enumerate(mine):
            ax.annotate(
                mpl_text(p.model), ((p.estimate_bytes or 0) / MIB, p.peak_bytes / MIB),
                textcoords="offset points", xytext=(5, 4 if j % 2 == 0 else -11), fontsize=7,
            )  # fmt: skip
    xs = [(p.estimate_bytes or 0) / MIB for p in have]
    ys = [p.peak_bytes / MIB for p in have]
    lo, hi = min(xs + ys), max(xs + ys)
    ax.plot([lo, hi], [lo, hi], color="#555555", lw=1, ls="--", label="peak = estimate")
    for budget in sorted({p.budget_bytes for p in have if p.budget_bytes}):
        ax.axhline(budget / MIB, color="#d62728", lw=1, label=f"budget {budget / MIB:g} MiB")
    log_log(ax, "estimate: weights + peak activations (MiB)", "measured peak (MiB)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Measured peak memory vs the static estimate", fontsize=10)
    return Plot(
        "memory",
        "Measured peak memory vs estimate",
        "log-log scatter of measured peak memory against weights plus peak activations",
        to_png(fig),
    )
