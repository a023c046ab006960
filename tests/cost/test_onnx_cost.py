"""ONNX cost counting: hand-counted tiny graphs, model-level rules, and agreement with torch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchharness.cost.onnx_cost import onnx_cost
from benchharness.cost.records import GraphCost, OpCost, Step, activation_liveness
from benchharness.cost.torch_cost import count_params, torch_macs
from benchharness.errors import CostError
from tests.cost.conftest import AGREEMENT_MODELS, Exported

F32 = 4  # bytes per float32 element

Shape = Sequence[int | str]  # str: a symbolic dimension


def _vi(name: str, shape: Shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _init(name: str, shape: Sequence[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones(shape, dtype=np.float32), name)


def _model(
    nodes: list[onnx.NodeProto],
    inputs: Mapping[str, Shape],
    outputs: Mapping[str, Shape],
    inits: Mapping[str, Sequence[int]] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [_vi(n, s) for n, s in inputs.items()],
        [_vi(n, s) for n, s in outputs.items()],
        initializer=[_init(n, s) for n, s in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    return model


def _only(cost: GraphCost, op_type: str) -> OpCost:
    ops = [op for op in cost.ops if op.op_type == op_type]
    assert len(ops) == 1, [op.op_type for op in cost.ops]
    return ops[0]


# --- hand-counted single operators -----------------------------------------------------------


def test_conv_by_hand() -> None:
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[1, 1, 1, 1])
    m = _model([node], {"x": (1, 3, 8, 8)}, {"y": (1, 4, 8, 8)}, {"w": (4, 3, 3, 3), "b": (4,)})
    cost = onnx_cost(m)
    op = _only(cost, "Conv")
    # 4 x 8 x 8 outputs, each 3 channels x 3 x 3 taps; the bias is not a MAC
    assert op.macs == 4 * 8 * 8 * 3 * 3 * 3 == 6912
    assert op.flops == 0
    assert op.params == 4 * 3 * 3 * 3 + 4 == 112
    assert op.input_bytes == 3 * 8 * 8 * F32
    assert op.weight_bytes == 112 * F32
    assert op.output_bytes == 4 * 8 * 8 * F32
    assert op.bytes == (192 + 112 + 256) * F32 == 2240
    assert op.output_shape == (1, 4, 8, 8)
    assert (op.op_index, op.op_name) == (0, "conv")
    assert (cost.macs, cost.params, cost.weight_bytes) == (6912, 112, 112 * F32)


def test_depthwise_conv_by_hand() -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=4, pads=[1, 1, 1, 1], strides=[2, 2])
    m = _model([node], {"x": (1, 4, 8, 8)}, {"y": (1, 4, 4, 4)}, {"w": (4, 1, 3, 3)})
    op = _only(onnx_cost(m), "Conv")
    # each of 4 x 4 x 4 outputs sees one input channel through a 3 x 3 window
    assert op.macs == 4 * 4 * 4 * 3 * 3 == 576
    assert op.params == 36
    assert op.bytes == (4 * 8 * 8 + 36 + 4 * 4 * 4) * F32


def test_gemm_linear_by_hand() -> None:
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
    m = _model([node], {"x": (2, 16)}, {"y": (2, 10)}, {"w": (10, 16), "b": (10,)})
    op = _only(onnx_cost(m), "Gemm")
    assert op.macs == 2 * 10 * 16 == 320  # M x N x K
    assert op.params == 10 * 16 + 10
    assert op.bytes == (2 * 16 + 170 + 2 * 10) * F32


def test_batched_matmul_and_conv_transpose_by_hand() -> None:
    mm = helper.make_node("MatMul", ["a", "b"], ["c"])
    m = _model([mm], {"a": (3, 4, 5), "b": (3, 5, 6)}, {"c": (3, 4, 6)})
    assert _only(onnx_cost(m), "MatMul").macs == 3 * 4 * 6 * 5

    ct = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])
    m = _model([ct], {"x": (1, 4, 5, 5)}, {"y": (1, 2, 11, 11)}, {"w": (4, 2, 3, 3)})
    # every input element is scattered through a 3 x 3 window into 2 output channels
    assert _only(onnx_cost(m), "ConvTranspose").macs == 4 * 5 * 5 * 2 * 3 * 3


def test_elementwise_flops_by_hand() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Sigmoid", ["r"], ["s"]),
        helper.make_node("BatchNormalization", ["s", "g", "b", "m", "v"], ["n"]),
        helper.make_node("MaxPool", ["n"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["y"]),
    ]
    bn = {k: (4,) for k in "gbmv"}
    m = _model(nodes, {"x": (1, 4, 8, 8)}, {"y": (1, 4, 1, 1)}, bn)
    cost = onnx_cost(m)
    flops = {op.op_type: op.flops for op in cost.ops}
    assert flops == {
        "Relu": 256,
        "Sigmoid": 256 * 4,  # SIGMOID_FLOPS, not onnx-tool's 32
        "BatchNormalization": 256 * 2,
        "MaxPool": 4 * 4 * 4 * 2 * 2,  # output elements x window
        "GlobalAveragePool": 4 * 4 * 4,  # input elements (the pooled 4 x 4 maps)
    }
    assert cost.macs == 0
    assert cost.flops == sum(flops.values())
    assert _only(cost, "BatchNormalization").params == 16


def test_concat_moves_bytes_only() -> None:
    node = helper.make_node("Concat", ["a", "b"], ["c"], axis=1)
    m = _model([node], {"a": (1, 4, 8, 8), "b": (1, 2, 8, 8)}, {"c": (1, 6, 8, 8)})
    cost = onnx_cost(m)
    op = _only(cost, "Concat")
    assert (op.macs, op.flops, op.params) == (0, 0, 0)
    assert op.bytes == (256 + 128 + 384) * F32
    assert cost.uncounted_op_types == ()


def test_chain_liveness_and_totals_by_hand() -> None:
    # x -> conv -> relu -> depthwise -> concat(relu, depthwise)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["d"], group=4, pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["r", "d"], ["c"], axis=1),
    ]
    inits = {"w1": (4, 3, 3, 3), "b1": (4,), "w2": (4, 1, 3, 3)}
    m = _model(nodes, {"x": (1, 3, 8, 8)}, {"c": (1, 8, 8, 8)}, inits)
    cost = onnx_cost(m)
    x, a, r, d, c = 768, 1024, 1024, 1024, 2048  # bytes of each activation
    # conv: x+a; relu: a+r; depthwise: r+d; concat: r+d+c (r is still needed by concat)
    assert cost.activation_peak_bytes == r + d + c == 4096
    assert cost.activation_total_bytes == x + a + r + d + c
    assert cost.params == 108 + 4 + 36
    assert cost.weight_bytes == (108 + 4 + 36) * F32
    assert cost.max_layer_bytes == r + d + c  # the concat
    assert cost.macs == 4 * 64 * 27 + 4 * 64 * 9
    assert cost.flops == 256  # the ReLU
    assert [op.op_index for op in cost.ops] == [0, 1, 2, 3]
    assert cost.model_bytes == m.ByteSize()
    by_type = cost.by_type()
    assert list(by_type) == ["Conv", "Concat", "Relu"]  # MACs first, then bytes
    assert by_type["Conv"].count == 2
    assert by_type["Conv"].macs == cost.macs


def test_constant_nodes_are_weights_not_operators() -> None:
    nodes = [
        helper.make_node(
            "Constant",
            [],
            ["k"],
            value=helper.make_tensor("kv", TensorProto.FLOAT, [4, 1, 1], [1.0] * 4),
        ),
        helper.make_node("Mul", ["x", "k"], ["y"]),
    ]
    m = _model(nodes, {"x": (1, 4, 2, 2)}, {"y": (1, 4, 2, 2)})
    cost = onnx_cost(m)
    assert [op.op_type for op in cost.ops] == ["Mul"]
    assert cost.ops[0].op_index == 1  # the node's position in graph.node
    assert cost.ops[0].params == 4
    assert cost.params == 4
    assert cost.activation_total_bytes == 2 * 16 * F32


def test_unknown_op_is_listed_not_guessed() -> None:
    node = helper.make_node("Det", ["x"], ["y"])
    m = _model([node], {"x": (3, 3)}, {"y": ()})
    cost = onnx_cost(m)
    assert cost.uncounted_op_types == ("Det",)
    assert (cost.macs, cost.flops) == (0, 0)
    assert cost.ops[0].bytes == (9 + 1) * F32


def test_symbolic_dimension_is_a_cost_error() -> None:
    node = helper.make_node("Relu", ["x"], ["y"])
    m = _model([node], {"x": ("N", 4)}, {"y": ("N", 4)})
    with pytest.raises(CostError, match="static input shapes"):
        onnx_cost(m)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(CostError, match="does not exist"):
        onnx_cost(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\x00 this is not protobuf" * 10)
    with pytest.raises(CostError):
        onnx_cost(bad)


def test_external_data_counts_in_model_bytes(tmp_path: Path) -> None:
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    m = _model([node], {"x": (1, 256)}, {"y": (1, 256)}, {"w": (256, 256)})
    path = tmp_path / "ext.onnx"
    onnx.save(m, str(path), save_as_external_data=True, location="ext.onnx.data")
    cost = onnx_cost(path)
    data_bytes = (tmp_path / "ext.onnx.data").stat().st_size
    assert data_bytes >= 256 * 256 * F32
    assert cost.model_bytes == path.stat().st_size + data_bytes
    assert cost.params == 256 * 256
    assert cost.macs == 256 * 256


# --- model-level helpers ---------------------------------------------------------------------


def test_liveness_frees_after_last_use() -> None:
    steps = [Step(("in",), ("a",)), Step(("a",), ("b",)), Step(("b", "in"), ("c",))]
    sizes = {"in": 10, "a": 100, "b": 1, "c": 5}
    # "in" stays live until step 2, "a" is freed after step 1
    peak, total = activation_liveness(steps, sizes, ["in"], ["c"])
    assert peak == 10 + 100 + 1
    assert total == 116


def test_torch_macs_and_params_by_hand() -> None:
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5))
    assert torch_macs(model, torch.randn(1, 3, 4, 4)) == 4 * 16 * 27 + 64 * 5
    assert count_params(model) == 112 + 64 * 5 + 5
    with pytest.raises(CostError):
        torch_macs(model, torch.randn(1, 5, 4, 4))


# --- exported models -------------------------------------------------------------------------


def test_hand_counted_export(exported: Callable[[str], Exported]) -> None:
    e = exported("hand")
    cost = onnx_cost(e.onnx)
    expected = 4 * 64 * 27 + 4 * 64 * 9 + 512 * 10  # conv, depthwise, linear
    assert cost.macs == expected == e.torch_macs
    assert cost.params == e.torch_params == 112 + 40 + 5130
    assert cost.model_bytes == e.onnx.stat().st_size
    assert cost.uncounted_op_types == ()


@pytest.mark.parametrize("name", list(AGREEMENT_MODELS))
def test_macs_agree_with_torch(name: str, exported: Callable[[str], Exported]) -> None:
    e = exported(name)
    cost = onnx_cost(e.onnx)
    assert cost.macs == pytest.approx(e.torch_macs, rel=0.01)
    assert cost.uncounted_op_types == ()
    assert cost.flops > 0
    assert 0 < cost.activation_peak_bytes <= cost.activation_total_bytes
    assert cost.max_layer_bytes == max(op.bytes for op in cost.ops)
