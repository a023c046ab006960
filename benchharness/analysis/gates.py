"""The ``--fail-on`` gates of ``bench compare``: which comparisons fail CI, and why.

``median:PCT`` fails on a significant slowdown of the median beyond PCT (``comparison.gate``),
never on a different mixture of the same modes (``mode_compare``);
``peak_mem:PCT`` on a peak memory grown beyond PCT (``memory_compare.memory_gate``); each is given
at most once. A gate's outcome is data, ``GateResult``: the matches that failed it and the message
CI prints. The caller prints it and picks the exit status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchharness.analysis.comparison import GATE_METRICS, Comparison, parse_fail_on
from benchharness.analysis.memory_compare import (
    GATE_METRIC,
    MemoryMatch,
    memory_gate,
    memory_gate_threshold,
)
from benchharness.errors import UsageError

#: The latency gate's metric: the median, docs/method.md's headline number.
LATENCY_METRIC = GATE_METRICS[0]
#: What to do after a significant slowdown: it is real unless the machine was busy.
LATENCY_ADVICE = "investigate before merging, or rerun both on a quiet machine if unexpected"
#: What to do after a peak grew: a peak repeats to a few pages, so the growth is the change's.
MEMORY_ADVICE = "find what allocates more before merging"


@dataclass(frozen=True)
class FailOn:
    """The parsed ``--fail-on`` specs; None where that gate was not asked for."""

    latency_spec: str | None = None  # as given (``median:5%``): the failure message quotes it
    latency: float | None = None  # the slowdown beyond which the latency gate fails
    memory: float | None = None  # the growth of a peak beyond which the memory gate fails


def parse_fail_on_specs(specs: Sequence[str]) -> FailOn:
    """``--fail-on`` as given (``median:5%``, ``peak_mem:10%``): at most one spec per gate;
    UsageError otherwise, or for a spec that is neither."""
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
    latency_spec = latency[0] if latency else None
    return FailOn(
        latency_spec=latency_spec,
        latency=parse_fail_on(latency_spec) if latency_spec else None,
        memory=memory[0] if memory else None,
    )


@dataclass(frozen=True)
class GateResult:
    """One gate applied to a comparison: the matches that failed it, and why."""

    metric: str  # LATENCY_METRIC, or memory_compare.GATE_METRIC
    threshold: float
    reason: str  # what fails the gate, e.g. "significant slowdown beyond median:5%"
    advice: str  # what to do when it failed
    failing: list[str] = field(default_factory=list)  # the failing matches, as the message says

    @property
    def failed(self) -> bool:
        return bool(self.failing)

    def message(self) -> str:
        """The line CI prints when the gate failed."""
        return f"GateFailed: {self.reason} in {', '.join(self.failing)}; {self.advice}"


def latency_gate(result: Comparison, spec: str, threshold: float) -> GateResult:
    """``--fail-on median:PCT``: the matches significantly slower by more than ``threshold``
    (unreliable ones and ``same modes`` ones excepted, as ``comparison.gate``)."""
    return GateResult(
        metric=LATENCY_METRIC,
        threshold=threshold,
        reason=f"significant slowdown beyond {spec}",
        advice=LATENCY_ADVICE,
        failing=[m.label for m in result.matches if m.significant_slowdown(threshold)],
    )


def peak_memory_gate(matches: Sequence[MemoryMatch], threshold: float) -> GateResult:
    """``--fail-on peak_mem:PCT``: the peaks grown by more than ``threshold``, with their ratio."""
    return GateResult(
        metric=GATE_METRIC,
        threshold=threshold,
        reason=f"peak memory grew beyond {threshold:.0%}",
        advice=MEMORY_ADVICE,
        failing=[f"{m.label} x{m.ratio:.3f}" for m in memory_gate(matches, threshold)],
    )


@dataclass
class GatedComparison:
    """Run B against run A on latency and on peak memory, and the gates asked for."""

    latency: Comparison
    memory: list[MemoryMatch]
    latency_gate: GateResult | None = None
    memory_gate: GateResult | None = None

    @property
    def failed_gates(self) -> list[GateResult]:
        """The gates that failed, the memory gate's first (the order CI prints them in)."""
        gates = (self.memory_gate, self.latency_gate)
        return [g for g in gates if g is not None and g.failed]

    @property
    def failed(self) -> bool:
        """Whether CI must fail."""
        return bool(self.failed_gates)

    def to_dict(self) -> dict[str, Any]:
        """``bench compare --json``: the latency comparison, its gate, the memory and its gate."""
        latency, memory = self.latency_gate, self.memory_gate
        return {
            **self.latency.to_dict(),
            "gate_threshold": latency.threshold if latency else None,
            "gate_failed": bool(latency and latency.failed),
            "memory": [m.to_dict() for m in self.memory],
            "memory_gate_threshold": memory.threshold if memory else None,
            "memory_gate_failed": bool(memory and memory.failed),
        }


def apply_gates(
    latency: Comparison, memory: Sequence[MemoryMatch], fail_on: FailOn
) -> GatedComparison:
    """The comparisons with the gates of ``fail_on`` applied to them."""
    result = GatedComparison(latency=latency, memory=list(memory))
    if fail_on.latency is not None:
        spec = fail_on.latency_spec or f"{LATENCY_METRIC}:{fail_on.latency:.0%}"
        result.latency_gate = latency_gate(latency, spec, fail_on.latency)
    if fail_on.memory is not None:
        result.memory_gate = peak_memory_gate(memory, fail_on.memory)
    return result
