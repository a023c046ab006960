"""Kernel detection on measured profiles: rows matched to graph nodes by the runtimes' names."""

from __future__ import annotations

from benchharness.predict.join import Kernel, evidence_of, measured_kernels
from benchharness.results.schema import OpRow
from tests.predict.synthetic import Builder


def _conv_relu_mean() -> Builder:
    b = Builder()
    x, y = (1, 8, 8, 8), (1, 16, 8, 8)
    b.add("Conv", ["input"], "conv_out", [x], y, macs=8 * 16 * 64, attrs={"k": 1, "s": 1, "g": 1})
    b.add("Relu", ["conv_out"], "relu_4", [y], y)
    b.add("ReduceMean", ["relu_4"], "mean", [y], (1, 16, 1, 1))
    return b


def test_an_nchwc_row_is_the_convolution_and_the_activation_it_names() -> None:
    g = _conv_relu_mean().graph()
    rows = [
        OpRow(op_name="ReorderInput", op_type="ReorderInput", median_us=2.0),
        OpRow(op_name="relu_4_nchwc", op_type="Conv", median_us=30.0),
        OpRow(op_name="ReorderOutput_token_7", op_type="ReorderOutput", median_us=5.0),
        OpRow(op_name="node_ReduceMean_2", op_type="ReduceMean", median_us=4.0),
    ]
    kernels, evidence = measured_kernels(g, rows)
    conv, mean = kernels
    assert [n.type for n in conv.nodes] == ["Conv", "Relu"]
    # a reorder is charged to the kernel that needs the layout: the conv after the graph input,
    # the plain-layout reduction after the blocked conv
    assert conv.time_us == 32.0 and conv.rows == 2
    assert mean.time_us == 9.0 and mean.rows == 2
    assert evidence.down[("Conv", "Relu", "tail")] == [1, 1]
    assert evidence.down[("Conv", "ReduceMean", "tail")] == [0, 1]


def test_a_node_without_a_row_runs_inside_its_producer_and_takes_the_loose_rows() -> None:
    # ORT does not fuse this HardSwish: it runs it as its own HardSigmoid and Mul nodes, named
    # after nothing in the graph; the graph node and those rows join the conv before them
    b = Builder()
    x, y = (1, 8, 8, 8), (1, 12, 8, 8)
    b.add("Conv", ["input"], "c", [x], y, macs=8 * 12 * 64, attrs={"k": 1, "s": 1, "g": 2})
    b.add("HardSwish", ["c"], "h", [y], y)
    b.add("ReduceMean", ["h"], "m", [y], (1, 12, 1, 1))
    g = b.graph()
    rows = [
        OpRow(op_name="node_Conv_0", op_type="Conv", median_us=20.0),
        OpRow(op_name="HardSigmoid_85", op_type="HardSigmoid", median_us=6.0),
        OpRow(op_name="Mul_86", op_type="Mul", median_us=7.0),
        OpRow(op_name="node_ReduceMean_2", op_type="ReduceMean", median_us=4.0),
    ]
    kernels, _ = measured_kernels(g, rows)
    conv = kernels[0]
    assert [n.type for n in conv.nodes] == ["Conv", "HardSwish"]
    assert conv.time_us == 33.0 and conv.rows == 3
    assert kernels[1].time_us == 4.0


def test_fusion_names_anchor_at_their_first_part_and_unnamed_leaders_join_their_consumer() -> None:
    b = Builder()
    x = (1, 8, 8, 8)
    b.add("Pad", ["input"], "p", [x], (1, 8, 10, 10))
    b.add(
        "Conv", ["p"], "c", [(1, 8, 10, 10)], x, macs=8 * 8 * 9 * 64, attrs={"k": 3, "s": 1, "g": 1}
    )
    b.add("Mul", ["c", "input"], "m", [x, x], x)
    g = b.graph()
    rows = [
        OpRow(op_name="node_Conv_1", op_type="Conv", median_us=50.0),
        OpRow(op_name="node_Mul_2/SomeFusion/", op_type="Mul", median_us=3.0),
    ]
    kernels, evidence = measured_kernels(g, rows)
    conv, mul = kernels
    assert [n.type for n in conv.nodes] == ["Pad", "Conv"] and conv.head.type == "Conv"
    assert mul.head.type == "Mul" and mul.time_us == 3.0
    assert evidence.up[("Pad", "Conv")] == [1, 1]


def test_tflite_rows_join_by_node_index_and_a_node_without_time_is_placed() -> None:
    b = Builder()
    x = (1, 8, 8, 8)
    b.add("PAD", ["input"], "p", [x], (1, 10, 10, 8))
    b.add(
        "DEPTHWISE_CONV_2D",
        ["p"],
        "d",
        [(1, 10, 10, 8)],
        x,
        macs=9 * 512,
        attrs={"k": 3, "s": 1, "g": 8, "act": "RELU6"},
    )
    b.add("MEAN", ["d"], "m", [x], (1, 8))
    nodes = b.nodes
    g = b.graph()
    g.format = "tflite"
    rows = [
        OpRow(
            op_name="Convolution",
            op_type="DEPTHWISE_CONV_2D",
            median_us=12.0,
            graph_ops=f"[{nodes[1].name}]:1,[{nodes[0].name}]:0",
        ),
        OpRow(op_name="Mean", op_type="MEAN", median_us=2.0, graph_ops="[m]:2"),
        OpRow(op_name="Mean", op_type="MEAN", median_us=None, graph_ops=None),
    ]
    kernels, _ = measured_kernels(g, rows)
    dw, mean = kernels
    assert dw.head.type == "DEPTHWISE_CONV_2D" and {n.type for n in dw.nodes} == {
        "PAD",
        "DEPTHWISE_CONV_2D",
    }
    assert dw.time_us == 12.0 and dw.clean
    assert mean.time_us == 2.0


def test_a_kernel_holding_two_compute_nodes_is_no_sample() -> None:
    b = Builder()
    x = (1, 8, 8, 8)
    b.add("MAX_POOL_2D", ["input"], "mp", [x], (1, 4, 4, 8), attrs={"k": 2, "s": 2})
    b.add("MEAN", ["mp"], "m", [(1, 4, 4, 8)], (1, 8))
    g = b.graph()
    g.format = "tflite"
    # an aligned-weak LiteRT row that took both nodes: its time cannot be split between them
    rows = [OpRow(op_name="Mean", op_type="MEAN", median_us=3.0, graph_ops="[m]:1,[mp]:0")]
    kernels, _ = measured_kernels(g, rows)
    assert len(kernels) == 1 and not kernels[0].clean


def test_arm_nhwc_rows_anchor_at_their_convolution_and_carry_their_transposes() -> None:
    """ONNX Runtime on aarch64 (as profiled on the emulated board): the NHWC transformer runs a
    convolution as ``NhwcFusedConv`` named ``<graph node>_token_<k>`` between two ``Transpose``s
    of its own; the kernel is that convolution with its activation, and the layout changes are
    charged forward, like x86's reorders."""
    g = _conv_relu_mean().graph()
    conv_name = g.by_index[0].name
    rows = [
        OpRow(op_name="Transpose", op_type="Transpose", median_us=2.0),
        OpRow(op_name=f"{conv_name}_token_1", op_type="NhwcFusedConv", median_us=30.0),
        OpRow(op_name="Transpose_token_9", op_type="Transpose", median_us=5.0),
        OpRow(op_name=g.by_index[2].name, op_type="ReduceMean", median_us=4.0),
    ]
    kernels, evidence = measured_kernels(g, rows)
    conv, mean = kernels
    assert [n.type for n in conv.nodes] == ["Conv", "Relu"]
    assert conv.clean
    assert conv.time_us == 32.0 and conv.rows == 2
    assert mean.time_us == 9.0 and mean.rows == 2
    assert evidence.down[("Conv", "Relu", "tail")] == [1, 1]


def test_a_leader_the_profile_put_in_another_kernel_is_no_evidence_either_way() -> None:
    # LiteRT's profile of a kernel model can place a PAD (no row of its own) in the convolution
    # after it in node order rather than in the one that reads it; counting that as "the PAD
    # ran alone" turned the majority for PAD -> CONV_2D on a build's random draws, and every
    # strided convolution of a new model got a PAD kernel of its own (shufflenet +42 %).
    b = Builder()
    x, p, y = (1, 8, 8, 8), (1, 8, 10, 10), (1, 8, 8, 8)
    pad = b.add("Pad", ["input"], "padded", [x], p)
    other = b.add("Conv", ["input"], "o", [x], y, macs=512, attrs={"k": 1, "s": 1, "g": 1})
    conv = b.add("Conv", ["padded"], "c", [p], y, macs=4608, attrs={"k": 3, "s": 1, "g": 1})
    g = b.graph()
    misplaced = Kernel(other, [pad, other], 5.0, 1)
    owner = {pad.index: misplaced, other.index: misplaced, conv.index: Kernel(conv, [conv], 9.0, 1)}
    assert ("Pad", "Conv") not in evidence_of(g, owner).up
    joined = Kernel(conv, [pad, conv], 9.0, 1)
    owner = {pad.index: joined, other.index: Kernel(other, [other], 5.0, 1), conv.index: joined}
    assert evidence_of(g, owner).up[("Pad", "Conv")] == [1, 1]
    alone = Kernel(pad, [pad], 1.0, 1)
    owner = {
        pad.index: alone,
        other.index: Kernel(other, [other], 5.0, 1),
        conv.index: Kernel(conv, [conv], 9.0, 1),
    }
    assert evidence_of(g, owner).up[("Pad", "Conv")] == [0, 1]
