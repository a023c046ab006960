"""The memory columns of a ``runs.csv`` row: measured figures beside the static estimate.

``mem_init_bytes`` / ``mem_peak_bytes`` are ``protocol.Memory``'s init and peak (above the
process with its runtime loaded, or above a native tool's start; perf_test: its whole process),
the largest over the job's processes: a budget has to hold the worst one. ``mem_source`` says
how they were read; ``mem_estimate_bytes`` is the artifact's weights plus its peak live
activations (``model_bytes + activation_bytes``), the figure ``bench check`` works from;
``mem_code_bytes`` the part of the peak that is the runtime's code paged in
(``ondevice/memory.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benchharness.ondevice import protocol
from benchharness.ondevice.protocol import Memory, RunnerResult
from benchharness.results.schema import RunRow

#: The row's memory columns, in ``runs.csv`` order.
MEMORY_COLUMNS: tuple[str, ...] = (
    "mem_source", "mem_init_bytes", "mem_peak_bytes", "mem_estimate_bytes", "mem_baseline_bytes",
    "mem_runtime_load_bytes", "mem_tensor_bytes", "mem_code_bytes",
)  # fmt: skip
#: Those holding whole numbers of bytes.
MEMORY_INT_COLUMNS = frozenset(MEMORY_COLUMNS) - {"mem_source"}
#: ``protocol.Memory``'s figures a row keeps, each in the column ``mem_<name>``.
MEMORY_FIELDS: tuple[str, ...] = (
    "init_bytes", "peak_bytes", "baseline_bytes", "runtime_load_bytes", "tensor_bytes",
    "code_bytes",
)  # fmt: skip
#: When processes disagree on how they read memory, the row names the weakest reading.
_STRENGTH = (protocol.MEM_RSS_DELTA, protocol.MEM_PERF_TEST, protocol.MEM_BENCHMARK_MODEL,
             protocol.MEM_VMHWM)  # fmt: skip


def estimate_bytes(model_bytes: Any, activation_bytes: Any) -> int | None:
    """Weights plus peak live activations; None unless both are known."""
    if model_bytes is None or activation_bytes is None:
        return None
    return int(model_bytes) + int(activation_bytes)


def _largest(values: Sequence[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _source(memories: Sequence[Memory]) -> str | None:
    sources = {m.source for m in memories if m.source}
    if not sources:
        return None
    ranked = [s for s in _STRENGTH if s in sources]
    return ranked[0] if ranked else sorted(sources)[0]


def memory_columns(results: Sequence[RunnerResult], cost: Mapping[str, Any]) -> dict[str, Any]:
    """The memory columns of a job's row from its processes and its artifact's cost."""
    row: dict[str, Any] = dict.fromkeys(MEMORY_COLUMNS)
    row["mem_estimate_bytes"] = estimate_bytes(
        cost.get("model_bytes"), cost.get("activation_bytes")
    )
    memories = [r.memory for r in results if r.memory is not None and r.memory.source]
    if not memories:
        return row
    row["mem_source"] = _source(memories)
    for name in MEMORY_FIELDS:
        row[f"mem_{name}"] = _largest([getattr(m, name) for m in memories])
    # the largest of each, but the process's own start is the first process's, as the
    # environment columns
    row["mem_baseline_bytes"] = memories[0].baseline_bytes
    return row


def memory_from_row(row: RunRow) -> Memory | None:
    """A stored row's memory as one process's ``Memory`` (``--resume`` keeps it)."""
    if not row.mem_source:
        return None
    return Memory(
        source=row.mem_source,
        init_bytes=row.mem_init_bytes,
        peak_bytes=row.mem_peak_bytes,
        baseline_bytes=row.mem_baseline_bytes,
        runtime_load_bytes=row.mem_runtime_load_bytes,
        tensor_bytes=row.mem_tensor_bytes,
        code_bytes=row.mem_code_bytes,
    )
