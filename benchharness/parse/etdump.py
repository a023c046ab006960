"""ExecuTorch ETDump profiles: per-operator times through the devtools Inspector, aligned to the
edge graph whose cost ``cost/pte_cost.py`` counts.

An ETDump (the python runner's pte pass, or ``executor_runner --etdump_path``) holds, per
inference, one event per executed instruction. The Inspector, given the ETRecord the host keeps
beside the artifact, turns them into events with per-run durations (ms) and debug handles:

* ``OPERATOR_CALL``: an operator ExecuTorch ran on its own kernels (portable or optimized); its
  debug handle names the edge node exactly. (The ``native_call_<kernel>`` event inside it only
  names the kernel.)
* ``DELEGATE_CALL``: one call into a backend partition; its debug handles name every edge node
  the partition took. The XNNPACK delegate reports its own operators (``Convolution (NHWC, F32)
  IGEMM #1``) just before it, without handles: they are aligned to the partition's nodes by kind
  in execution order, with the monotone alignment ``litert_profiler`` uses for XNNPACK inside
  LiteRT (edge op types mapped to the TFLite builtins it knows); nodes XNNPACK folded away
  (batch norm into the convolution, a ReLU into its producer) are absorbed by a neighbour. A
  partition that reports no operators is one row that carries all its nodes.
  XNNPACK's events time only its ``xnn_invoke_runtime``; the delegate also reshapes and sets up
  its runtime on every call (``XNNExecutor::prepare_args``: ~0.17 ms per call of mobilenet_v2
  here, ~2 % of its inference). That time is a row of its own, ``delegate call overhead``, with
  no graph cost, so within each run the rows add up to the call. (Summed *medians* can still
  fall short of the median inference on a busy machine: when each run loses time in a different
  operator, every operator's median misses it.)
* ``Method::execute``: the whole inference, the profile's own end-to-end figure.

Each row's ``median_us`` is the median over the profiled runs (the first ``warmup_runs`` of
each event left out). The rows are ``protocol.ProfiledOp``s, joined to cost like LiteRT's rows
(``parse/op_join.litert_rows``).

An ETDump comes from a device: a file past MAX_ETDUMP_BYTES is not read, and every event's name
and durations are checked before they are used (ParseError naming the file and the event). A
debug handle the ETRecord does not know names no node (the row keeps its time, without cost).
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchharness.cost.pte_cost import EdgeOp, edge_ops, edge_program, load_etrecord
from benchharness.errors import CostError, ParseError
from benchharness.export.pte import etrecord_path
from benchharness.ondevice.litert_profiler import absorbed_nodes, align_xnnpack_ops, kind_matches
from benchharness.ondevice.protocol import ProfiledOp
from benchharness.parse.logtext import MAX_FIGURE, quote

#: Inspector event names of the instructions that are not operators of the graph.
METHOD_EXECUTE = "Method::execute"
DELEGATE_CALL = "DELEGATE_CALL"
OPERATOR_CALL = "OPERATOR_CALL"
NATIVE_CALL_PREFIX = "native_call_"
#: The Inspector's block of the inferences (``Default`` holds the one-off load events).
EXECUTE_BLOCK = "Execute"
US_PER_MS = 1000.0
#: Most bytes of an ETDump read: as much as the harness fetches of a profile
#: (``dispatch/fetch.MAX_PROFILE_BYTES``); one of 50 runs of a large model is a few MB.
MAX_ETDUMP_BYTES = 256 * 2**20
#: Longest event name: operator and kernel names are a few dozen characters.
MAX_NAME_CHARS = 4096
#: What a duration must be (ms); MAX_FIGURE keeps every sum of them finite.
DURATION_EXPECTED = f"a finite time in ms >= 0 and at most {MAX_FIGURE:g}"

#: The op type of a delegate call's time outside its operators' events: XNNPACK reshapes and
#: sets up its runtime on every call (``XNNExecutor::prepare_args``), before the profiled invoke.
OUTSIDE_OPS = "delegate call overhead"
#: Edge op type -> the TFLite builtin the XNNPACK alignment table knows it as.
TFLITE_KIND: dict[str, str] = {
    "aten.convolution": "CONV_2D",
    "aten.linear": "FULLY_CONNECTED",
    "aten.addmm": "FULLY_CONNECTED",
    "aten.mm": "FULLY_CONNECTED",
    "aten.bmm": "BATCH_MATMUL",
    "aten.matmul": "BATCH_MATMUL",
    "aten.add": "ADD",
    "aten.sub": "SUB",
    "aten.mul": "MUL",
    "aten.div": "DIV",
    "aten.maximum": "MAXIMUM",
    "aten.minimum": "MINIMUM",
    "aten.relu": "RELU",
    "aten.hardtanh": "RELU6",
    "aten.clamp": "RELU6",
    "aten.permute_copy": "TRANSPOSE",
    "aten.view_copy": "RESHAPE",
    "aten.squeeze_copy": "RESHAPE",
    "aten.unsqueeze_copy": "RESHAPE",
    "aten.constant_pad_nd": "PAD",
    "aten.mean": "MEAN",
    "aten.sum": "SUM",
    "aten.amax": "REDUCE_MAX",
    "aten.amin": "REDUCE_MIN",
    "aten.avg_pool2d": "AVERAGE_POOL_2D",
    "aten._adaptive_avg_pool2d": "AVERAGE_POOL_2D",
    "aten.max_pool2d": "MAX_POOL_2D",
    "aten.max_pool2d_with_indices": "MAX_POOL_2D",
    "aten._softmax": "SOFTMAX",
    "aten.hardswish": "HARD_SWISH",
    "aten.sigmoid": "LOGISTIC",
    "aten.tanh": "TANH",
    "aten.elu": "ELU",
    "aten.leaky_relu": "LEAKY_RELU",
    "aten.gelu": "GELU",
    "aten.sqrt": "SQRT",
    "aten.rsqrt": "RSQRT",
    "aten.neg": "NEG",
    "aten.abs": "ABS",
    "aten.floor": "FLOOR",
    "aten.ceil": "CEIL",
    "aten.exp": "EXP",
    "aten.log": "LOG",
    "aten.cat": "CONCATENATION",
    "aten.slice_copy": "SLICE",
    "aten.split_with_sizes_copy": "SPLIT",
    "aten.upsample_bilinear2d": "RESIZE_BILINEAR",
    "aten.pixel_shuffle": "DEPTH_TO_SPACE",
    "quantized_decomposed.quantize_per_tensor": "QUANTIZE",
    "quantized_decomposed.dequantize_per_tensor": "DEQUANTIZE",
    "quantized_decomposed.dequantize_per_channel": "DEQUANTIZE",
    "aten._to_copy": "CAST",
    "dim_order_ops._to_dim_order_copy": "RESHAPE",
    "dim_order_ops._clone_dim_order": "RESHAPE",
    "aten._native_batch_norm_legit_no_training": "BATCH_NORM",
}
#: Kinds XNNPACK fuses into the operator *before* them: output activations, and batch norm,
#: which it folds into the preceding convolution's weights.
ABSORBED_BY_PREVIOUS = frozenset({"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "BATCH_NORM"})


@dataclass(frozen=True)
class EtdumpProfile:
    """What one ETDump says: operator rows aligned to the graph, and its own end-to-end."""

    ops: list[ProfiledOp]
    execute_ms: float | None
    runs: int


def _handles(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value if isinstance(v, int)]
    return []


def _durations(event: Any) -> list[Any]:
    """The event's duration in each run (ms), as the Inspector gives them."""
    return list(getattr(getattr(event, "perf_data", None), "raw", None) or [])


def _is_duration(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0.0 <= value <= MAX_FIGURE  # False for NaN
    )


def _check_events(events: Sequence[Any]) -> None:
    """ParseError naming the first event whose name or durations no ETDump of ours holds."""
    for k, event in enumerate(events):
        name = str(getattr(event, "name", ""))
        if len(name) > MAX_NAME_CHARS:
            raise ParseError(
                f"event {k} ({quote(name)}): name longer than {MAX_NAME_CHARS} characters"
            )
        for run, value in enumerate(_durations(event)):
            if not _is_duration(value):
                raise ParseError(
                    f"event {k} ({quote(name)}): duration of run {run}: expected "
                    f"{DURATION_EXPECTED}, got {quote(repr(value))}"
                )


def _median_us(event: Any, warmup_runs: int) -> tuple[float | None, int]:
    raw = _durations(event)
    kept = raw[warmup_runs:] if len(raw) > warmup_runs else raw
    if not kept:
        return None, 0
    return float(statistics.median(kept)) * US_PER_MS, len(kept)


def _outside_us(call: Any, pending: Sequence[Any], warmup_runs: int) -> float | None:
    """Median per run of a delegate call's time outside its operators' events."""
    total = _durations(call)
    parts = [_durations(e) for e in pending]
    runs = min([len(total), *(len(p) for p in parts)])
    per_run = [max(0.0, total[r] - sum(p[r] for p in parts)) for r in range(runs)]
    kept = per_run[warmup_runs:] if runs > warmup_runs else per_run
    return float(statistics.median(kept)) * US_PER_MS if kept else None


def _kind(op: EdgeOp) -> str:
    return TFLITE_KIND.get(op.op_type, op.op_type.upper())


def _partition_rows(
    pending: Sequence[Any], members: Sequence[EdgeOp], call: Any, warmup_runs: int
) -> list[ProfiledOp]:
    """The XNNPACK operators of one delegate call, aligned to the nodes it took."""
    kinds = [_kind(op) for op in members]
    if not pending:
        median, _ = _median_us(call, warmup_runs)
        return [
            ProfiledOp(
                op_name=f"{getattr(call, 'delegate_backend_name', None) or 'delegate'} partition",
                op_type=DELEGATE_CALL,
                op_index=members[0].index if members else -1,
                calls=1,
                median_us=median,
                absorbed_op_indices=[op.index for op in members[1:]],
            )
        ]
    names = [str(e.name) for e in pending]
    assignment = align_xnnpack_ops(names, kinds) if members else None
    absorbed = absorbed_nodes(assignment, kinds, ABSORBED_BY_PREVIOUS) if assignment else {}
    # an operator of another kind than its node (a layout transpose XNNPACK inserted) is the
    # runtime's own work when the node has an operator of its kind: no graph cost of its own
    matched = {
        assignment[k]
        for k in range(len(names))
        if assignment is not None and kind_matches(names[k], kinds[assignment[k]])
    }
    rows = []
    for k, event in enumerate(pending):
        median, _ = _median_us(event, warmup_runs)
        row = ProfiledOp(op_name=names[k], op_type=names[k].split(" #", 1)[0], calls=1,
                         median_us=median)  # fmt: skip
        if assignment is not None:
            position = assignment[k]
            foreign = kind_matches(names[k], kinds[position]) is False and position in matched
            if not foreign:
                row.op_index = members[position].index
                row.op_type = members[position].op_type
            row.absorbed_op_indices = [members[p].index for p in absorbed.get(k, [])]
        rows.append(row)
    outside = _outside_us(call, pending, warmup_runs) if call is not None else None
    if outside is not None:
        backend = getattr(call, "delegate_backend_name", None) or "delegate"
        rows.append(ProfiledOp(op_name=f"{backend} call outside operators", op_type=OUTSIDE_OPS,
                               calls=1, median_us=outside))  # fmt: skip
    return rows


def _operator_row(
    event: Any, by_handle: Mapping[int, list[EdgeOp]], kernel: str | None, warmup_runs: int
) -> ProfiledOp:
    """An operator ExecuTorch ran itself: its debug handle names the node."""
    median, _ = _median_us(event, warmup_runs)
    types = [".".join(str(t).split(".")[:2]) for t in getattr(event, "op_types", None) or []]
    handles = _handles(getattr(event, "debug_handles", None))
    nodes = [op for h in handles for op in by_handle.get(h, ())]
    main = next((op for op in nodes if op.op_type in types), nodes[0] if nodes else None)
    return ProfiledOp(
        op_name=kernel or f"{OPERATOR_CALL} {types[0] if types else ''}".strip(),
        op_type=main.op_type if main is not None else (types[0] if types else OPERATOR_CALL),
        op_index=main.index if main is not None else -1,
        calls=1,
        median_us=median,
        absorbed_op_indices=[op.index for op in nodes if op is not main],
    )


def align_events(events: Sequence[Any], ops: Sequence[EdgeOp], warmup_runs: int) -> EtdumpProfile:
    """Rows of one method's Inspector events (in execution order), aligned to ``ops``; ParseError
    naming the first event that is malformed (see _check_events)."""
    _check_events(events)
    by_handle: dict[int, list[EdgeOp]] = {}
    for op in ops:
        if op.debug_handle is not None:
            by_handle.setdefault(op.debug_handle, []).append(op)
    rows: list[ProfiledOp] = []
    pending: list[Any] = []
    kernels: dict[int, str] = {}
    execute_ms = None
    runs = 0
    for event in events:
        name = str(getattr(event, "name", ""))
        if name == METHOD_EXECUTE:
            median, runs = _median_us(event, warmup_runs)
            execute_ms = median / US_PER_MS if median is not None else None
        elif getattr(event, "is_delegated_op", False):
            pending.append(event)
        elif name == DELEGATE_CALL:
            taken = set(_handles(getattr(event, "debug_handles", None)))
            members = [op for op in ops if op.debug_handle in taken]
            rows.extend(_partition_rows(pending, members, event, warmup_runs))
            pending = []
        elif name.startswith(NATIVE_CALL_PREFIX):
            for h in _handles(getattr(event, "debug_handles", None)):
                kernels[h] = name
        elif name == OPERATOR_CALL:
            handles = _handles(getattr(event, "debug_handles", None))
            kernel = next((kernels[h] for h in handles if h in kernels), None)
            rows.append(_operator_row(event, by_handle, kernel, warmup_runs))
    # delegated operators after the last DELEGATE_CALL belong to no call: keep their time
    rows.extend(_partition_rows(pending, [], None, warmup_runs) if pending else [])
    return EtdumpProfile(ops=rows, execute_ms=execute_ms, runs=runs)


def _check_file(etdump: Path) -> None:
    """ParseError unless ``etdump`` is a regular file of at most MAX_ETDUMP_BYTES."""
    try:
        size = etdump.stat().st_size if etdump.is_file() else None
    except OSError as exc:
        raise ParseError(f"cannot read the ETDump {etdump}: {exc.strerror or exc}") from exc
    if size is None:
        raise ParseError(f"the ETDump {etdump} is not a regular file")
    if size > MAX_ETDUMP_BYTES:
        raise ParseError(
            f"the ETDump {etdump} holds {size} bytes, more than {MAX_ETDUMP_BYTES} bytes (no "
            "benchmark's ETDump is that large)"
        )


def read_etdump(etdump: Path, artifact: Path, warmup_runs: int) -> EtdumpProfile:
    """The ETDump at ``etdump`` read with the ETRecord beside ``artifact`` (ParseError if not)."""
    _check_file(etdump)
    try:
        etrecord = load_etrecord(etrecord_path(artifact))
        ops = edge_ops(edge_program(etrecord))
    except CostError as exc:
        raise ParseError(f"cannot read the ETDump without its ETRecord: {exc}") from exc
    try:
        from executorch.devtools import Inspector
    except ImportError as exc:
        raise ParseError(f"ExecuTorch's devtools are not installed ({exc})") from exc
    try:
        with warnings.catch_warnings():
            # it warns about every event it cannot match to the record; the rows say as much
            warnings.simplefilter("ignore")
            inspector = Inspector(etdump_path=str(etdump), etrecord=etrecord)
    except Exception as exc:  # the Inspector raises many types for a bad or foreign ETDump
        raise ParseError(
            f"the Inspector cannot read {etdump}: {type(exc).__name__}: {exc}"
        ) from exc
    blocks = [b for b in inspector.event_blocks if b.name == EXECUTE_BLOCK] or list(
        inspector.event_blocks
    )
    events = [e for b in blocks for e in b.events]
    if not events:
        raise ParseError(f"the ETDump {etdump} holds no events of an inference")
    try:
        return align_events(events, ops, warmup_runs)
    except ParseError as exc:
        raise ParseError(f"the ETDump {etdump}: {exc}") from exc
