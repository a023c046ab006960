"""Table cells as plain data, and how the report writes numbers into them.

The lowest layer of the report: every section that builds a table (``tables``,
``memory_section``, ``cross_runtime``, ``predicted``) builds it from these, and the HTML and
Markdown writers render them. Each cell carries its display text and a sort key, so the HTML table
sorts numbers as numbers (``1.2 G`` after ``900 M``) and the Markdown table shows the same text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Significant digits of latencies and ratios: the measurement noise is rarely below 0.1 %.
SIG_DIGITS = 3


@dataclass(frozen=True)
class Cell:
    text: str
    sort: float | str | None = None  # None: sort by text; numbers sort numerically
    css: str = ""  # "flagged", "slower", "faster", "num"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""


def sig(value: float | None, digits: int = SIG_DIGITS) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"


def num_cell(value: float | None, text: str | None = None, css: str = "num") -> Cell:
    return Cell(text if text is not None else sig(value), value if value is not None else "", css)


def scaled(value: float | None, scale: float, digits: int = SIG_DIGITS) -> Cell:
    return num_cell(value, sig(value / scale, digits) if value is not None else None)


def pct(value: float | None) -> Cell:
    return num_cell(value, f"{100 * value:.1f} %" if value is not None else "–")


def ratio_text(ratio: float | None) -> str:
    """0.26 -> '3.85× faster', 2.65 -> '2.65× slower'."""
    if ratio is None:
        return "–"
    if ratio >= 1:
        return f"{sig(ratio)}× slower"
    return f"{sig(1 / ratio)}× faster"


def corr_text(value: float | None, p: float | None = None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" + (f" (p={p:.2g})" if p is not None else "")
