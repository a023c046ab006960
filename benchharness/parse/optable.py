"""One operator's share of an inference, whichever tool or profile it came from.

``benchmark_model`` prints per-operator *averages* over the timed runs; the ONNX Runtime profile is
reduced to per-operator *medians*. Both end up as :class:`OpTime` rows so the store and the reports
handle one shape, and ``statistic`` says honestly which summary ``per_run_us`` is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

Statistic = Literal["avg", "median"]


@dataclass(frozen=True)
class OpTime:
    """Time one operator (or one fused delegate partition) takes per inference."""

    op_index: int  # position in execution order, from 0
    op_name: str
    op_type: str  # empty when the source does not say
    per_run_us: float  # the operator's time per inference, summed over its calls in that run
    statistic: Statistic  # how per_run_us summarises the runs
    calls: int | None = None  # calls per inference
    share: float | None = None  # fraction of the summed time of all operators
    provider: str = ""  # execution provider or delegate, when the source names it
    node_index: int | None = None  # graph node index, when the source gives one
    runs: int | None = None  # how many inferences per_run_us summarises, when known


def with_shares(ops: Sequence[OpTime]) -> list[OpTime]:
    """Return ``ops`` with ``share`` set to each operator's fraction of their summed time."""
    total = sum(op.per_run_us for op in ops)
    if total <= 0:
        return [replace(op, share=None) for op in ops]
    return [replace(op, share=op.per_run_us / total) for op in ops]


def total_us(ops: Sequence[OpTime]) -> float:
    """Summed per-inference time of all operators (compared with the end-to-end latency)."""
    return sum(op.per_run_us for op in ops)
