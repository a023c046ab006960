"""The report's memory section: measured peak against the static estimate and the device budget.

One point per measured row with a peak (``mem_peak_bytes``): the estimate is the artifact's
weights plus its peak live activations (``mem_estimate_bytes``), the budget the device
profile's memory budget (``analysis.memory_fit.memory_budget``) where the row's device has a
profile that sets one. Where the two disagree is the news: a runtime's arena and packed weights
above the estimate, in-place reuse below it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from benchharness.analysis.memory_fit import memory_budget
from benchharness.errors import HarnessError
from benchharness.profiles.device_profile import load_profile
from benchharness.report.cells import Cell, Table, num_cell, sig
from benchharness.results.schema import RunRow

#: Row statuses whose memory the section shows (as the latency sections).
MEASURED = ("ok", "partial")
MIB = 1 << 20


@dataclass
class MemoryPoint:
    run_id: str
    device: str
    runtime: str
    format: str
    model: str
    precision: str
    peak_bytes: int
    source: str
    init_bytes: int | None = None
    estimate_bytes: int | None = None
    runtime_load_bytes: int | None = None
    tensor_bytes: int | None = None
    code_bytes: int | None = None
    budget_bytes: int | None = None

    @property
    def series(self) -> str:
        return f"{self.device} / {self.runtime} / {self.format}"

    @property
    def ratio(self) -> float | None:
        """Measured peak over the estimate."""
        if not self.estimate_bytes:
            return None
        return self.peak_bytes / self.estimate_bytes

    @property
    def fits(self) -> bool | None:
        return None if self.budget_bytes is None else self.peak_bytes <= self.budget_bytes


def _budgets(devices: Sequence[str]) -> dict[str, int | None]:
    """Each device's memory budget from its profile; None where it has no profile or budget."""
    out: dict[str, int | None] = {}
    for device in devices:
        try:
            out[device] = memory_budget(load_profile(device))
        except HarnessError:  # an imported or renamed device: no profile to read a budget from
            out[device] = None
    return out


def memory_points(runs: Sequence[tuple[str, Sequence[RunRow]]]) -> list[MemoryPoint]:
    """The points of ``(run_id, runs.csv rows)`` pairs; later runs win on the same job."""
    rows = [
        (rid, r, peak)
        for rid, rs in runs
        for r in rs
        if r.status in MEASURED and (peak := r.mem_peak_bytes) is not None
    ]
    budgets = _budgets(sorted({r.device for _, r, _ in rows}))
    points: dict[tuple[str, ...], MemoryPoint] = {}
    for rid, r, peak in rows:
        point = _point(rid, r, peak, budgets.get(r.device))
        key = (point.series, point.model, point.precision, r.input_shape or "")
        points[key] = point
    return sorted(points.values(), key=lambda p: (p.series, p.estimate_bytes or 0, p.model))


def _point(run_id: str, r: RunRow, peak_bytes: int, budget_bytes: int | None) -> MemoryPoint:
    """The memory point of one measured row, whose ``mem_peak_bytes`` is ``peak_bytes``."""
    return MemoryPoint(
        run_id=run_id,
        device=r.device,
        runtime=r.runtime or "",
        format=r.format,
        model=r.model,
        precision=r.precision,
        peak_bytes=peak_bytes,
        source=r.mem_source or "",
        budget_bytes=budget_bytes,
        init_bytes=r.mem_init_bytes,
        estimate_bytes=r.mem_estimate_bytes,
        runtime_load_bytes=r.mem_runtime_load_bytes,
        tensor_bytes=r.mem_tensor_bytes,
        code_bytes=r.mem_code_bytes,
    )


def _mib(value: int | None) -> Cell:
    return num_cell(value, sig(value / MIB) if value is not None else None)


def memory_table(points: Sequence[MemoryPoint]) -> Table:
    columns = ["series", "model", "precision", "estimate MiB", "init MiB", "peak MiB",
               "peak / estimate", "source", "of it runtime code MiB", "runtime load MiB",
               "runtime tensors MiB", "budget MiB", "fits budget"]  # fmt: skip
    table = Table("Measured peak memory against the estimate (weights + peak activations)", columns)
    for p in points:
        fits = "–" if p.fits is None else ("yes" if p.fits else "no")
        table.rows.append([
            Cell(p.series), Cell(p.model), Cell(p.precision), _mib(p.estimate_bytes),
            _mib(p.init_bytes), _mib(p.peak_bytes), num_cell(p.ratio), Cell(p.source),
            _mib(p.code_bytes), _mib(p.runtime_load_bytes), _mib(p.tensor_bytes),
            _mib(p.budget_bytes),
            Cell(fits, css="" if p.fits is not False else "flagged"),
        ])  # fmt: skip
    table.note = (
        "init and peak: resident memory above the process with its runtime loaded (python "
        "runner), above the tool's start (benchmark_model), or the whole process "
        "(onnxruntime_perf_test); of it runtime code: the runtime's library code paged in on the "
        "way (file-backed, not model data); runtime load: what importing the runtime added; "
        "runtime tensors: LiteRT's interpreter buffers (a delegate's own are not in it)."
    )
    return table


def memory_summary(points: Sequence[MemoryPoint]) -> list[str]:
    """One line per series: how far the measured peak lies from the estimate."""
    lines = []
    for series in dict.fromkeys(p.series for p in points):
        ratios = [r for p in points if p.series == series and (r := p.ratio) is not None]
        mine = [p for p in points if p.series == series]
        budget = [p for p in mine if p.fits is not None]
        text = f"{series}: {len(mine)} model(s)"
        if ratios:
            text += (
                f", measured peak / estimate median {statistics.median(ratios):.2f} "
                f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
            )
        if budget:
            text += f"; {sum(1 for p in budget if p.fits)} of {len(budget)} fit the device budget"
        lines.append(text)
    return lines
