"""The peak-memory table of ``bench compare`` (its gate is ``analysis/gates.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table

from benchharness.cli.common import print_table, text

if TYPE_CHECKING:  # imported when the command runs: `bench --help` stays quick
    from benchharness.analysis.memory_compare import MemoryMatch

_STYLE = {"grew": "red", "shrank": "green", "same": "", "not comparable": "yellow"}


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / (1 << 20):.2f}"


def print_memory(run_a: str, run_b: str, matches: Sequence[MemoryMatch]) -> None:
    """The table of peaks; nothing when neither run measured one."""
    if not any(m.peak_a_bytes is not None or m.peak_b_bytes is not None for m in matches):
        return
    table = Table(title=text(f"Peak memory: {run_b} vs {run_a}"))
    for col in ("model", "format", "A MiB", "B MiB", "B/A", "source", "verdict"):
        table.add_column(col, justify="right" if "MiB" in col or col == "B/A" else "left")
    for m in matches:
        style = _STYLE.get(m.verdict, "")
        verdict = f"[{style}]{m.verdict}[/{style}]" if style else m.verdict
        source = m.source_a if m.source_a == m.source_b else f"{m.source_a} / {m.source_b}"
        table.add_row(
            text(m.model), text(f"{m.format}/{m.precision}"), _mib(m.peak_a_bytes),
            _mib(m.peak_b_bytes), "-" if m.ratio is None else f"{m.ratio:.3f}",
            text(source or "-"), verdict + (f" ({text(m.note)})" if m.note else ""),
        )  # fmt: skip
    print_table(table)
