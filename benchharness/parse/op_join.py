"""Per-operator rows: a runner's profile joined with the cost of the same operators.

ONNX Runtime: the runner's profiled session writes ORT's JSON profile; it is reduced to per-node
medians (``parse/ort_profile``) and joined to the ONNX graph's cost by node name. LiteRT: the
runner's ``litert_profiler`` gives per-operator medians with the TFLite node index of each
operator (XNNPACK's operators aligned to the nodes they came from); they are joined to the TFLite
graph's cost by node index, and nodes that XNNPACK folded into a neighbour (a PAD into the next
convolution) add their cost to that neighbour. The native tools: perf_test's ``-p`` profile goes
the ORT way (uncorrected: no calibration runs beside the tool); ``benchmark_model``'s operator
table is aligned to the TFLite graph the same way (``parse/native_result``) and joined like
LiteRT's rows (its times are per-run averages, the only figure the tool prints).

ORT's profiler adds a fixed cost to every node it records; the python runner calibrates it on
the device (``ondevice/ort_calibrate``) and ``median_us`` is corrected by it, the profile's own
figure kept in ``median_raw_us``.

Every graph operator's cost lands in exactly one row (``graph_ops`` names them), so the MACs summed
over ``ops.csv`` equal the graph's MACs; a LiteRT graph operator that got no time of its own gets a
row with its cost and an empty time. Pure functions: fetching a profile from a device is
``dispatch/op_profile``'s job.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from benchharness.errors import UsageError
from benchharness.ondevice.protocol import ProfiledOp
from benchharness.parse import ort_profile

if TYPE_CHECKING:
    from benchharness.cost.records import GraphCost, OpCost

#: The cost columns of an operator row.
COST_FIELDS = ("macs", "flops", "params", "bytes")


def _cost_of(op: OpCost | None) -> dict[str, Any]:
    if op is None:
        return dict.fromkeys(COST_FIELDS)
    return {f: getattr(op, f) for f in COST_FIELDS}


def _add_cost(into: dict[str, Any], op: OpCost) -> None:
    for f in COST_FIELDS:
        into[f] = (into.get(f) or 0) + getattr(op, f)


def _param_sizes(events: list[dict[str, Any]]) -> dict[str, int]:
    """Node name -> bytes of its weights, as ORT's profile reports them."""
    sizes: dict[str, int] = {}
    for e in events:
        name = str(e.get("name", ""))
        args = e.get("args")
        if name.endswith("_kernel_time") and isinstance(args, dict) and "parameter_size" in args:
            with contextlib.suppress(TypeError, ValueError):
                sizes.setdefault(name.removesuffix("_kernel_time"), int(args["parameter_size"]))
    return sizes


def _match_ort(
    times: list[Any], cost: GraphCost, param_sizes: dict[str, int] | None = None
) -> list[list[OpCost]]:
    """For each profiled node, the graph operators whose cost it carries.

    ORT rewrites the graph before running it (Conv+ReLU fusion, the NCHWc layout on x86, NHWC
    kernels between inserted transposes on ARM), so node names only sometimes survive. First every
    node whose name (``ort_profile.graph_name``) matches claims its graph operator; then each
    other node takes the next unclaimed graph operator of its type in execution order, preferring
    one whose weight bytes equal the node's (a branch, such as a shortcut projection, may run at
    another point than the graph lists it). Graph operators that no node claimed were fused into
    a neighbour: their cost goes to the closest claimed one before them.
    """
    ops = cost.ops
    by_name = {op.op_name: i for i, op in enumerate(ops)}
    claimed: dict[int, int] = {}  # graph op index -> profiled row
    named: dict[int, int] = {}  # profiled row -> graph op index its name holds
    for row, t in enumerate(times):
        idx = by_name.get(ort_profile.graph_name(t.op_name))
        if idx is not None and idx not in claimed:
            claimed[idx] = row
            named[row] = idx
    cursor = 0
    for row, t in enumerate(times):
        idx = named.get(row)
        if idx is None:
            want = ort_profile.graph_type(t.op_type)
            free = [i for i in range(len(ops)) if i not in claimed and ops[i].op_type == want]
            size = (param_sizes or {}).get(t.op_name)
            same_size = [i for i in free if size and ops[i].weight_bytes == size]
            ahead = [i for i in free if i >= cursor]
            pick = same_size or ahead or free
            idx = pick[0] if pick else None
        if idx is not None:
            claimed[idx] = row
            cursor = max(cursor, idx + 1) if idx >= cursor else cursor
    groups: list[list[OpCost]] = [[] for _ in times]
    owner: int | None = None
    for i, op in enumerate(ops):
        if i in claimed:
            owner = claimed[i]
        target = claimed.get(i, owner)
        if target is None:
            target = min(claimed.values()) if claimed else None
        if target is not None:
            groups[target].append(op)
    return groups


def corrected_us(
    raw_us: float | None, calls: int | None, node_cost_us: float | None
) -> float | None:
    """An ORT operator's per-run time without the profiler's cost per recorded call.

    ``node_cost_us`` comes from the device's calibration (``ondevice/ort_calibrate``); a node
    faster than that cost is taken as free rather than negative. None leaves the time raw."""
    if raw_us is None or not node_cost_us:
        return raw_us
    return max(0.0, raw_us - (calls if calls is not None else 1) * node_cost_us)


def ort_rows(
    text: str, warmup_runs: int, cost: GraphCost | None, node_cost_us: float | None = None
) -> list[dict[str, Any]]:
    """Rows of an ORT JSON profile (its first ``warmup_runs`` runs left out) joined to cost.

    ``median_us`` is corrected by ``node_cost_us`` per call (``corrected_us``); the profile's own
    figure stays in ``median_raw_us``."""
    events = ort_profile.load_profile_events(text)
    skip = warmup_runs
    try:
        times = ort_profile.aggregate_node_times(events, skip_first_runs=skip)
    except UsageError:
        times = ort_profile.aggregate_node_times(events)
    groups = _match_ort(times, cost, _param_sizes(events)) if cost else [[] for _ in times]
    rows: list[dict[str, Any]] = []
    for t, group in zip(times, groups, strict=True):
        row: dict[str, Any] = {"op_name": t.op_name, "op_type": t.op_type, "calls": t.calls,
                               "median_us": corrected_us(t.per_run_us, t.calls, node_cost_us),
                               "median_raw_us": t.per_run_us,
                               **dict.fromkeys(COST_FIELDS)}  # fmt: skip
        for op in group:
            _add_cost(row, op)
        if group:
            row["graph_ops"] = ",".join(op.op_name for op in group)
        rows.append(row)
    return rows


def litert_rows(ops: Sequence[ProfiledOp], cost: GraphCost | None) -> list[dict[str, Any]]:
    """Rows of operators already aligned to the graph (LiteRT's profiler, benchmark_model)."""
    by_index = {op.op_index: op for op in cost.ops} if cost else {}
    rows: list[dict[str, Any]] = []
    used: set[int] = set()
    for p in ops:
        index = p.op_index
        # several runtime operators may map to one graph operator: its cost goes to the first
        op = by_index.get(index) if index not in used else None
        row = {
            "op_name": p.op_name,
            "op_type": p.op_type,
            "calls": p.calls,
            "median_us": p.median_us,
            "median_raw_us": p.median_us,  # LiteRT's events hold no fixed per-node cost to take off
            **_cost_of(op),
        }
        if op is not None:
            used.add(index)
            row["graph_ops"] = op.op_name
        for absorbed in p.absorbed_op_indices:
            extra = by_index.get(int(absorbed))
            if extra is not None and int(absorbed) not in used:
                _add_cost(row, extra)
                used.add(int(absorbed))
                row["graph_ops"] = ",".join(filter(None, [row.get("graph_ops"), extra.op_name]))
        rows.append(row)
    if cost:
        for op in cost.ops:
            if op.op_index not in used:
                rows.append({"op_name": op.op_name, "op_type": op.op_type, "calls": 0,
                             "median_us": None, **_cost_of(op)})  # fmt: skip
    return rows
