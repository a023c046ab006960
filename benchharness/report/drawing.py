"""What every figure of the report is drawn with: the Agg backend, the palette, log-log axes,
and the PNG a figure becomes (``Plot``).

Figures are built with the object API (``matplotlib.figure.Figure``), never pyplot, so no global
figure state leaks between reports and nothing needs a display.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # before pyplot is ever imported: no display on servers and in CI

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

#: Resolution of the PNGs: sharp on a laptop screen, small enough to inline as base64.
DPI = 110
#: Colours of ordinary and flagged points (colour-blind safe pair from the tab10 palette).
COLOR_OK = "#1f77b4"
COLOR_FLAGGED = "#d62728"
#: Op-type colours: a qualitative palette with an entry for each of plots.TOP_OP_TYPES + other.
OP_COLORS = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


#: Labelled ticks per decade on log axes (1, 2, 5, 10, ...): readable over one decade or six.
LOG_LABEL_STEPS = (1.0, 2.0, 5.0)


def mpl_text(text: str) -> str:
    """Text for matplotlib: a '$' in a model name must not start mathtext."""
    return text.replace("$", r"\$")


def log_log(ax: Axes, xlabel: str, ylabel: str) -> None:
    """Log scales on both axes, labelled and gridded."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        # plain numbers (30, not 3×10¹) at 1-2-5 steps, so even a narrow range shows labels;
        # minor ticks stay unlabeled so they never collide
        axis.set_major_locator(LogLocator(base=10, subs=LOG_LABEL_STEPS))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)


@dataclass(frozen=True)
class Plot:
    slug: str  # file-name safe, unique within a report
    title: str
    alt: str
    png: bytes


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()
