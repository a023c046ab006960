"""ETDump events (as the Inspector gives them) aligned to the edge graph: synthetic events, so
every rule is pinned down; the real ETDump path is tests/ondevice/test_executorch_runner.py."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchharness.cost.pte_cost import EdgeOp
from benchharness.errors import ParseError
from benchharness.parse import etdump
from benchharness.parse.etdump import OUTSIDE_OPS, align_events


def op(index: int, op_type: str, handle: int) -> EdgeOp:
    return EdgeOp(index, f"node{index}", op_type, handle, None)


def event(name: str, raw: list[float], **fields: Any) -> SimpleNamespace:
    base: dict[str, Any] = {"is_delegated_op": False, "debug_handles": None, "op_types": [],
            "delegate_backend_name": None}  # fmt: skip
    return SimpleNamespace(name=name, perf_data=SimpleNamespace(raw=raw), **{**base, **fields})


def xnn(name: str, raw: list[float]) -> SimpleNamespace:
    return event(name, raw, is_delegated_op=True, delegate_backend_name="XnnpackBackend")


GRAPH = [
    op(0, "aten.convolution", 1),
    op(1, "aten._native_batch_norm_legit_no_training", 2),
    op(2, "aten.relu", 3),
    op(3, "aten.cumsum", 4),
    op(4, "aten.convolution", 5),
    op(5, "aten.add", 6),
]
#: one warm-up run (first value), then three profiled runs (ms)
CALL1 = [
    xnn("Transpose (ND, X32) #1", [9.0, 0.001, 0.002, 0.003]),
    xnn("Convolution (NHWC, F32) IGEMM #1", [9.0, 0.010, 0.030, 0.020]),
    event("DELEGATE_CALL", [9.0, 0.02, 0.04, 0.03], debug_handles=[1, 2, 2, 3],
          delegate_backend_name="XnnpackBackend"),
    event("native_call_cumsum.out", [9.0, 0.005, 0.005, 0.005], debug_handles=4),
    event("OPERATOR_CALL", [9.0, 0.006, 0.007, 0.008], debug_handles=4,
          op_types=["aten.cumsum.default"]),
    xnn("Convolution (NHWC, F32) IGEMM #1", [9.0, 0.05, 0.05, 0.05]),
    xnn("Add (ND) #1", [9.0, 0.004, 0.004, 0.004]),
    event("DELEGATE_CALL", [9.0, 0.06, 0.06, 0.06], debug_handles=[5, 6]),
    event("Method::execute", [9.0, 0.1, 0.3, 0.2]),
]  # fmt: skip


def test_xnnpack_operators_align_to_their_partitions_nodes_and_absorb_fused_ones() -> None:
    prof = align_events(CALL1, GRAPH, warmup_runs=1)
    by_name = {(o.op_name, o.op_index): o for o in prof.ops}
    stem = by_name[("Convolution (NHWC, F32) IGEMM #1", 0)]
    assert stem.median_us == 20.0  # median of 10, 30, 20 us: the warm-up run left out
    assert stem.op_type == "aten.convolution"
    # batch norm folded into the convolution, ReLU fused as its output clamp
    assert sorted(stem.absorbed_op_indices) == [1, 2]
    second = by_name[("Convolution (NHWC, F32) IGEMM #1", 4)]
    add = by_name[("Add (ND) #1", 5)]
    assert (second.median_us, add.op_type) == (50.0, "aten.add")
    # the layout transpose XNNPACK inserted is time without a graph operator
    (transpose,) = [o for o in prof.ops if o.op_name.startswith("Transpose")]
    assert transpose.op_index == -1 and transpose.median_us == 2.0
    assert prof.execute_ms == 0.2 and prof.runs == 3


def test_a_delegate_calls_time_outside_its_operators_is_a_row_without_cost() -> None:
    prof = align_events(CALL1, GRAPH, warmup_runs=1)
    first, second = [o for o in prof.ops if o.op_type == OUTSIDE_OPS]
    # per run: 20-1-10, 40-2-30, 30-3-20 us -> median 8; then 60-50-4 = 6 us every run
    assert first.median_us == pytest.approx(8.0) and second.median_us == pytest.approx(6.0)
    assert first.op_index == -1 and first.op_name == "XnnpackBackend call outside operators"
    # with them the rows add up to the calls: 2 + 20 + 8, the cumsum's 7, then 50 + 4 + 6
    total = sum(o.median_us or 0.0 for o in prof.ops)
    assert total == pytest.approx(97.0)


def test_an_operator_on_executorchs_own_kernels_is_named_by_its_kernel_and_handle() -> None:
    prof = align_events(CALL1, GRAPH, warmup_runs=1)
    (row,) = [o for o in prof.ops if o.op_index == 3]
    assert row.op_name == "native_call_cumsum.out" and row.op_type == "aten.cumsum"
    assert row.median_us == 7.0  # the OPERATOR_CALL, which wraps the kernel call


def test_a_partition_without_operator_events_is_one_row_with_all_its_nodes() -> None:
    events = [
        event("DELEGATE_CALL", [0.5, 0.7, 0.6], debug_handles=[1, 2, 3],
              delegate_backend_name="SomeNpuBackend"),
    ]  # fmt: skip
    (row,) = align_events(events, GRAPH, warmup_runs=0).ops
    assert row.op_name == "SomeNpuBackend partition" and row.op_index == 0
    assert row.absorbed_op_indices == [1, 2] and row.median_us == 600.0


def test_too_few_runs_to_leave_the_warmup_out_keeps_what_there_is() -> None:
    events = [xnn("Add (ND) #1", [0.004]), event("DELEGATE_CALL", [0.01], debug_handles=[6])]
    row, outside = align_events(events, GRAPH, warmup_runs=5).ops
    assert row.median_us == 4.0 and row.op_index == 5
    assert outside.median_us == 6.0


# ---------------------------------------------------------------- hostile ETDumps


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.5, "fast", None, True])
@pytest.mark.parametrize("where", ["xnnpack", "call", "operator", "execute"])
def test_a_duration_that_is_not_a_finite_time_names_the_event(bad: Any, where: str) -> None:
    events = [
        xnn("Add (ND) #1", [0.004, 0.004]),
        event("DELEGATE_CALL", [0.01, 0.01], debug_handles=[6]),
        event("OPERATOR_CALL", [0.006, 0.007], debug_handles=4, op_types=["aten.cumsum.default"]),
        event("Method::execute", [0.1, 0.3]),
    ]
    k = ["xnnpack", "call", "operator", "execute"].index(where)
    events[k].perf_data.raw[1] = bad
    with pytest.raises(ParseError, match=rf"event {k} \('{re.escape(events[k].name)}'.*duration"):
        align_events(events, GRAPH, warmup_runs=0)


def test_a_debug_handle_the_record_does_not_know_is_a_row_without_a_node() -> None:
    """An ETDump of another program (or a damaged one) names handles the ETRecord lacks: that
    was a KeyError; the row keeps its time and claims no graph operator."""
    events = [event("OPERATOR_CALL", [0.006], debug_handles=[99], op_types=["aten.mul.Tensor"])]
    (row,) = align_events(events, GRAPH, warmup_runs=0).ops
    assert (row.op_index, row.op_type, row.median_us) == (-1, "aten.mul", 6.0)


def test_an_event_name_longer_than_any_operators_is_refused() -> None:
    with pytest.raises(ParseError, match=r"event 0 .*name"):
        align_events([xnn("x" * 100_000, [0.1])], GRAPH, warmup_runs=0)


def test_an_etdump_larger_than_any_real_one_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = tmp_path / "e.etdp"
    dump.write_bytes(b"\0" * 64)
    monkeypatch.setattr(etdump, "MAX_ETDUMP_BYTES", 63)
    with pytest.raises(ParseError, match=rf"{dump}.* more than 63 bytes"):
        etdump.read_etdump(dump, tmp_path / "m.pte", warmup_runs=0)
    with pytest.raises(ParseError, match="not a regular file"):
        etdump.read_etdump(tmp_path, tmp_path / "m.pte", warmup_runs=0)
