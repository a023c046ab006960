"""Compare the peak memory of two runs, as ``compare.py`` compares their latency.

Rows are paired as for latency (``comparison.pair_rows``). A row's peak (``mem_peak_bytes``) is one
figure, the largest of its processes, and a process's peak repeats to a few pages from start to
start, so there is no test: B/A is the ratio, a change is called when it moved by the threshold
*and* by more than ``MIN_CHANGE_BYTES``. Peaks read two different ways (``mem_source``: an exact
``vmhwm`` and a lower-bound ``rss-delta``, or two tools) are not compared. ``--fail-on
peak_mem:10%`` fails when some peak grew by more than 10 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchharness.analysis.comparison import metric_threshold, pair_names, pair_rows
from benchharness.results.schema import RunRow

#: The ``--fail-on`` metric of this comparison.
GATE_METRIC = "peak_mem"
#: Smallest change in bytes called a change: a fresh process's resident size moves by a few
#: pages between starts (8 KiB seen here), so a ratio on a tiny model must not call that news.
MIN_CHANGE_BYTES = 256 * 1024
#: Default threshold of a memory verdict, as a fraction: 5 %, the latency comparison's default.
DEFAULT_THRESHOLD = 0.05

VERDICTS = ("grew", "shrank", "same", "not comparable")


@dataclass
class MemoryMatch:
    """One model's peak memory in both runs."""

    model: str
    format: str
    precision: str
    device_a: str
    device_b: str
    peak_a_bytes: int | None
    peak_b_bytes: int | None
    source_a: str | None
    source_b: str | None
    ratio: float | None
    verdict: str
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.model} [{self.format}/{self.precision}]"

    def grew_beyond(self, threshold: float) -> bool:
        """B's peak is above A's by more than ``threshold`` (a fraction) and by a real amount."""
        if self.ratio is None or self.peak_a_bytes is None or self.peak_b_bytes is None:
            return False
        if self.verdict == "not comparable":
            return False
        grown = self.peak_b_bytes - self.peak_a_bytes
        return self.ratio > 1.0 + threshold and grown >= MIN_CHANGE_BYTES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def memory_gate_threshold(spec: str) -> float | None:
    """``"peak_mem:10%"`` -> 0.10; None when ``spec`` gates on another metric."""
    return metric_threshold(spec, GATE_METRIC)


def _match(ra: RunRow, rb: RunRow, threshold: float) -> MemoryMatch:
    pa, pb = ra.mem_peak_bytes, rb.mem_peak_bytes
    sa, sb = ra.mem_source or None, rb.mem_source or None
    ratio = pb / pa if pa and pb is not None else None
    note = ""
    if pa is None or pb is None or ratio is None:
        verdict, note = (
            "not comparable",
            "no measured peak on "
            + ("both sides" if pa is None and pb is None else "A" if pa is None else "B"),
        )
    elif sa != sb:
        verdict, note = "not comparable", f"read as {sa} in A and {sb} in B"
    elif bool(ra.emulated) != bool(rb.emulated):
        # the translator's own memory is in an emulated process's peak (qemu-user: 1.0-2.3x the
        # native peak of the same model here), so the pair measures emulation, not the model
        side, how = ("A", ra.emulated) if ra.emulated else ("B", rb.emulated)
        verdict, note = "not comparable", f"{side} ran under {how}, the other natively"
    elif abs(pb - pa) < MIN_CHANGE_BYTES:
        verdict = "same"
    elif ratio >= 1.0 + threshold:
        verdict = "grew"
    elif ratio <= 1.0 - threshold:
        verdict = "shrank"
    else:
        verdict = "same"
    return MemoryMatch(
        **pair_names(ra, rb),
        peak_a_bytes=pa,
        peak_b_bytes=pb,
        source_a=sa,
        source_b=sb,
        ratio=ratio,
        verdict=verdict,
        note=note,
    )


def compare_memory(
    runs_a: Sequence[RunRow],
    runs_b: Sequence[RunRow],
    threshold: float = DEFAULT_THRESHOLD,
) -> list[MemoryMatch]:
    """Every pair of rows measuring the same thing, by peak memory."""
    pairs, _, _ = pair_rows(runs_a, runs_b)
    return [_match(ra, rb, threshold) for ra, rb in pairs]


def memory_gate(matches: Sequence[MemoryMatch], threshold: float) -> list[MemoryMatch]:
    """The matches that fail ``--fail-on peak_mem:PCT``: peaks grown beyond ``threshold``."""
    return [m for m in matches if m.grew_beyond(threshold)]
