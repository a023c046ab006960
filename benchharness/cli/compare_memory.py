"""The peak-memory part of ``bench compare``: its table, JSON and ``--fail-on peak_mem:PCT``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from benchharness.cli.common import console, text
from benchharness.errors import UsageError

_STYLE = {"grew": "red", "shrank": "green", "same": "", "not comparable": "yellow"}


def split_fail_on(specs: Sequence[str]) -> tuple[str | None, float | None]:
    """The latency gate's spec (at most one) and the memory gate's threshold (at most one)."""
    from benchharness.analysis.memory_compare import memory_gate_threshold

    latency: list[str] = []
    memory: list[float] = []
    for spec in specs:
        threshold = memory_gate_threshold(spec)
        if threshold is None:
            latency.append(spec)
        else:
            memory.append(threshold)
    if len(latency) > 1 or len(memory) > 1:
        raise UsageError("--fail-on: give median:PCT and peak_mem:PCT at most once each")
    return (latency[0] if latency else None), (memory[0] if memory else None)


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / (1 << 20):.2f}"


@dataclass
class MemorySection:
    run_a: str
    run_b: str
    matches: list[Any] = field(default_factory=list)
    gate_threshold: float | None = None
    failing: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "memory": [m.to_dict() for m in self.matches],
            "memory_gate_threshold": self.gate_threshold,
            "memory_gate_failed": bool(self.failing),
        }

    def print(self) -> None:
        if not any(m.peak_a_bytes is not None or m.peak_b_bytes is not None for m in self.matches):
            return
        table = Table(title=text(f"Peak memory: {self.run_b} vs {self.run_a}"))
        for col in ("model", "format", "A MiB", "B MiB", "B/A", "source", "verdict"):
            table.add_column(col, justify="right" if "MiB" in col or col == "B/A" else "left")
        for m in self.matches:
            style = _STYLE.get(m.verdict, "")
            verdict = f"[{style}]{m.verdict}[/{style}]" if style else m.verdict
            source = m.source_a if m.source_a == m.source_b else f"{m.source_a} / {m.source_b}"
            table.add_row(
                text(m.model), text(f"{m.format}/{m.precision}"), _mib(m.peak_a_bytes),
                _mib(m.peak_b_bytes), "-" if m.ratio is None else f"{m.ratio:.3f}",
                text(source or "-"), verdict + (f" ({text(m.note)})" if m.note else ""),
            )  # fmt: skip
        console.print(table)

    def report_gate(self) -> bool:
        """Print why the memory gate failed; True when it did."""
        if not self.failing:
            return False
        assert self.gate_threshold is not None
        grown = ", ".join(f"{m.label} x{m.ratio:.3f}" for m in self.failing)
        print(
            f"GateFailed: peak memory grew beyond {self.gate_threshold:.0%} in {grown}; "
            "find what allocates more before merging",
            file=sys.stderr,
        )
        return True


def memory_section(
    results_dir: Path, run_a: str, run_b: str, threshold: float, gate_threshold: float | None
) -> MemorySection:
    from benchharness.analysis.memory_compare import compare_memory, memory_gate
    from benchharness.results.store import RunStore

    store_a, store_b = RunStore.open(results_dir, run_a), RunStore.open(results_dir, run_b)
    matches = compare_memory(store_a.runs, store_b.runs, threshold)
    failing = memory_gate(matches, gate_threshold) if gate_threshold is not None else []
    return MemorySection(store_a.run_id, store_b.run_id, matches, gate_threshold, failing)
