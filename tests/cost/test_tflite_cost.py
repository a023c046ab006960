"""TFLite cost counting: a hand-counted export, the interpreter's view, and agreement with torch."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from benchharness.cost.onnx_cost import onnx_cost
from benchharness.cost.tflite_cost import tflite_cost
from benchharness.errors import CostError
from tests.cost.conftest import AGREEMENT_MODELS, Exported

F32 = 4  # bytes per float32 element


def test_hand_counted_export(exported: Callable[[str], Exported]) -> None:
    """HandCounted at 1x3x8x8: conv 3->4 + ReLU, depthwise, concat, flatten, linear 512->10."""
    e = exported("hand")
    cost = tflite_cost(e.tflite)
    ops = {op.op_type: op for op in cost.ops}

    conv = ops["CONV_2D"]
    assert conv.macs == 8 * 8 * 4 * 3 * 3 * 3 == 6912  # out elements x C_in x kh x kw
    assert conv.flops == 8 * 8 * 4  # the ReLU fused into the convolution, one per output
    assert conv.params == 4 * 3 * 3 * 3 + 4
    assert conv.output_shape == (1, 8, 8, 4)  # NHWC
    assert conv.output_bytes == 256 * F32
    assert conv.weight_bytes == 112 * F32

    dw = ops["DEPTHWISE_CONV_2D"]
    assert dw.macs == 8 * 8 * 4 * 3 * 3 == 2304  # out elements x kh x kw
    assert dw.params == 4 * 3 * 3 + 4
    assert dw.bytes == (256 + 40 + 256) * F32

    fc = ops["FULLY_CONNECTED"]
    assert fc.macs == 1 * 512 * 10  # batch x in x out
    assert fc.params == 512 * 10 + 10
    assert fc.bytes == (512 + 5130 + 10) * F32

    cat = ops["CONCATENATION"]
    assert (cat.macs, cat.flops, cat.params) == (0, 0, 0)
    assert cat.bytes == (256 + 256 + 512) * F32

    assert cost.macs == 6912 + 2304 + 5120 == e.torch_macs
    assert cost.params == e.torch_params  # no batch norm to fold, so the same weights
    # peak at the concat: the ReLU output (still read by it), the depthwise output and the result
    assert cost.activation_peak_bytes == (256 + 256 + 512) * F32
    assert cost.max_layer_bytes == max(op.bytes for op in cost.ops) == fc.bytes
    assert cost.model_bytes == e.tflite.stat().st_size
    assert cost.uncounted_op_types == ()


def test_op_index_name_and_type_match_the_interpreter(exported: Callable[[str], Exported]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    e = exported("hand")
    cost = tflite_cost(e.tflite)
    interpreter = Interpreter(model_path=str(e.tflite))
    details = interpreter._get_ops_details()
    tensors = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    assert len(details) == len(cost.ops)
    for op, d in zip(cost.ops, details, strict=True):
        assert op.op_index == d["index"]
        assert op.op_type == d["op_name"]
        # LiteRT's profiler names a node "[out1, out2]:<node index>"
        outs = ", ".join(tensors[int(t)] for t in d["outputs"])
        assert op.op_name == f"[{outs}]:{d['index']}"
        assert re.fullmatch(r"\[.*\]:\d+", op.op_name)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(CostError, match="does not exist"):
        tflite_cost(tmp_path / "nope.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 64)
    with pytest.raises(CostError):
        tflite_cost(bad)


@pytest.mark.parametrize("name", list(AGREEMENT_MODELS))
def test_macs_agree_with_torch_and_onnx(name: str, exported: Callable[[str], Exported]) -> None:
    e = exported(name)
    cost = tflite_cost(e.tflite)
    assert cost.macs == pytest.approx(e.torch_macs, rel=0.01)
    assert cost.uncounted_op_types == ()
    assert 0 < cost.activation_peak_bytes <= cost.activation_total_bytes
    # the same network in the other format: same MACs, similar element-wise work
    other = onnx_cost(e.onnx)
    assert cost.macs == pytest.approx(other.macs, rel=0.01)
    assert cost.flops == pytest.approx(other.flops, rel=0.25)
