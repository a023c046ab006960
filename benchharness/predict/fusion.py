"""Fusion per runtime: measured on operator pairs, and applied to graphs that were never run.

Two sources, as the issue asks:

* **pair test** (nn-Meter's rule): each operator of a pair alone and the two in sequence are timed
  on the device; they fuse when ``T1 + T2 - T12 > 0.5 * min(T1, T2)``. A model's time ``T`` is the
  sum of its profiled operators, layout transposes and reorders left out (a single-op model pays
  them at its graph edges; two ops in sequence pay them once).
* **the runtimes' own fused kernels**, read off the profiles of every kernel model
  (``join.Evidence``): how often a node that could run inside its neighbour did.

``detect_kernels`` groups a graph's nodes into the kernels the runtime will run, from the profile
evidence: a node joins the kernel before it when nodes of its type did so in more than half of the
same situations measured, joins the kernel after it likewise, vanishes when nodes of its type
never got time of their own, and is a kernel of its own otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchharness.predict.join import Evidence, Kernel, down_candidate, up_candidate
from benchharness.predict.wiring import Graph
from benchharness.results.schema import OpRow

#: nn-Meter's fusion rule: the pair saves more than half the cheaper operator's time.
FUSION_SAVING_SHARE = 0.5
#: A node follows the runtime's majority: fused if more than this share of chances were.
MAJORITY = 0.5
#: Rows that are layout changes at a graph's edges, not work of the pair's operators.
LAYOUT_ROW_TYPES = frozenset({"TRANSPOSE", "ReorderInput", "ReorderOutput"})


def _share(counts: Sequence[int] | None) -> float:
    if not counts or counts[1] <= 0:
        return 0.0
    return counts[0] / counts[1]


def detect_kernels(graph: Graph, evidence: Evidence) -> list[Kernel]:
    """The kernels a runtime runs for ``graph``, by the fusion evidence of its measurements."""
    owner: dict[int, Kernel] = {}
    kernels: list[Kernel] = []
    for n in graph.nodes:
        found = down_candidate(graph, n, owner)
        if found is not None:
            kernel, situation = found
            if _share(evidence.down.get((kernel.head.type, n.type, situation))) > MAJORITY:
                kernel.nodes.append(n)
                owner[n.index] = kernel
                continue
        k = Kernel(head=n, nodes=[n])
        kernels.append(k)
        owner[n.index] = k
    for n in reversed(graph.nodes):
        k = owner[n.index]
        if k.head is not n or len(k.nodes) != 1:
            continue
        consumer = up_candidate(graph, n)
        if consumer is None or owner[consumer.index].head is not consumer:
            continue
        if _share(evidence.up.get((n.type, consumer.type))) > MAJORITY:
            target = owner[consumer.index]
            target.nodes.insert(0, n)
            owner[n.index] = target
            kernels.remove(k)
    out = []
    for k in kernels:
        alone = evidence.alone.get(k.head.type)
        vanished = len(k.nodes) == 1 and alone is not None and alone[0] > alone[1]
        if not vanished:
            k.nodes.sort(key=lambda m: m.index)
            out.append(k)
    return out


@dataclass(frozen=True)
class PairResult:
    """One pair's times on one format (us) and the verdict of the saving rule."""

    format: str
    first: str
    second: str
    t1: float
    t2: float
    t12: float

    @property
    def saving(self) -> float:
        return self.t1 + self.t2 - self.t12

    @property
    def fused(self) -> bool:
        return self.saving > FUSION_SAVING_SHARE * min(self.t1, self.t2)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "first": self.first,
            "second": self.second,
            "t1_us": self.t1,
            "t2_us": self.t2,
            "t12_us": self.t12,
            "saving_us": self.saving,
            "fused": self.fused,
        }


def model_time_us(rows: Sequence[OpRow]) -> float:
    """A pair model's time: its profiled operators, layout changes at its edges left out."""
    return sum(
        r.median_us for r in rows if r.median_us is not None and r.op_type not in LAYOUT_ROW_TYPES
    )


def pair_results(
    pairs: Sequence[tuple[str, str]], times: Mapping[tuple[str, str], float]
) -> list[PairResult]:
    """Verdicts from ``times[(format, model name)]``; pairs missing a time are left out."""
    out = []
    formats = sorted({fmt for fmt, _ in times})
    for fmt in formats:
        for a, b in pairs:
            t1 = times.get((fmt, f"pair-{a}"))
            t2 = times.get((fmt, f"pair-{b}"))
            t12 = times.get((fmt, f"pair-{a}+{b}"))
            if t1 is None or t2 is None or t12 is None:
                continue
            out.append(PairResult(fmt, a, b, t1, t2, t12))
    return out
