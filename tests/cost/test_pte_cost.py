"""Per-operator cost of an ExecuTorch program, counted on the edge graph its ETRecord holds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchharness.cost.artifact_cost import graph_cost
from benchharness.cost.pte_cost import edge_ops, edge_program, load_etrecord
from benchharness.errors import CostError
from benchharness.export import pipeline, pte
from benchharness.export.cache import CacheEntry
from benchharness.zoo.registry import ModelSpec
from tests.support.tiny import tiny_cnn_macs

#: TinyCnn's weights: conv 8x3x3x3, BN scale/shift and running stats (4 x 8), depthwise 8x1x3x3,
#: pointwise 16x8, linear 10x16 + 10.
TINY_PARAMS = 216 + 4 * 8 + 72 + 128 + 170


def export(spec: ModelSpec, precision: str = "fp32") -> CacheEntry:
    (outcome,) = pipeline.export_model(spec, ["pte"], precision=precision)
    assert outcome.entry is not None, outcome.error
    return outcome.entry


def test_macs_match_the_hand_count_and_every_op_adds_up(tiny_spec: ModelSpec) -> None:
    entry = export(tiny_spec)
    cost = graph_cost(entry.path, "pte", entry.sha256)
    assert cost.format == "pte"
    assert cost.macs == tiny_cnn_macs() == sum(op.macs for op in cost.ops)
    assert cost.params == TINY_PARAMS
    assert [op.op_type for op in cost.ops if op.macs] == ["aten.convolution"] * 3 + ["aten.linear"]
    for op in cost.ops:
        assert op.bytes == op.input_bytes + op.weight_bytes + op.output_bytes
    first = cost.ops[0]
    assert (first.input_bytes, first.weight_bytes, first.output_bytes) == (
        3 * 32 * 32 * 4, 8 * 3 * 3 * 3 * 4, 8 * 32 * 32 * 4,
    )  # fmt: skip
    # the stem's output and its batch norm's are both live at the norm
    assert cost.activation_peak_bytes == 2 * 8 * 32 * 32 * 4
    assert cost.model_bytes == entry.path.stat().st_size


def test_ops_are_the_edge_graph_in_order_with_their_debug_handles(tiny_spec: ModelSpec) -> None:
    entry = export(tiny_spec)
    ops = edge_ops(edge_program(load_etrecord(pte.etrecord_path(entry.path))))
    assert [op.index for op in ops] == list(range(len(ops)))
    assert [op.name for op in ops] == [op.op_name for op in graph_cost(entry.path, "pte").ops]
    handles = [op.debug_handle for op in ops]
    assert all(h is not None for h in handles) and len(set(handles)) == len(handles)


def test_int8_weights_are_read_at_one_byte(tiny_spec: ModelSpec) -> None:
    cost = graph_cost(export(tiny_spec, "int8-static").path, "pte")
    assert cost.macs == tiny_cnn_macs()
    stem = next(op for op in cost.ops if op.op_type == "aten.convolution")
    # int8 weights (the dequantisation is not an operator of its own) and a float32 bias
    assert stem.weight_bytes == 8 * 3 * 3 * 3 * 1 + 8 * 4
    assert any(op.op_type == "quantized_decomposed.quantize_per_tensor" for op in cost.ops)


def test_a_program_without_its_etrecord_has_no_cost(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    alone = tmp_path / "alone.pte"
    shutil.copy(export(tiny_spec).path, alone)
    with pytest.raises(CostError, match="no ETRecord"):
        graph_cost(alone, "pte")
