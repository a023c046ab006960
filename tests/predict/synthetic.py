"""Synthetic graphs and a fake device whose kernel times follow a known formula.

A synthetic model is a kernel model as ``predict/kernels.py`` builds them, written as graph nodes
directly (no export): an input, a depthwise stem, convolution blocks (conv + ReLU) each pooled by a
ReduceMean, and a final Concat. The fake device "runs" it the way ONNX Runtime does: the ReLU has
no row of its own (fused into the convolution), every other node is a row, and each row's time
comes from ``FORMULA``; the end-to-end time is the rows' sum plus a fixed per-run offset.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from benchharness.cost.records import GraphCost, OpCost
from benchharness.predict.predictor import Predictor
from benchharness.predict.samples import Measured, measure_artifact
from benchharness.predict.wiring import Graph, Node
from benchharness.results.schema import OpRow

#: The fingerprint of a predictor built on the fake device (an ONNX Runtime host).
FINGERPRINT = {
    "device": "local",
    "cpu_model": "Xeon",
    "threads": 2,
    "runner": "python",
    "statistic": "median",
    "harness_version": "0.1.0",
    "runtimes": {"onnx": {"runtime": "onnxruntime", "version": "1.32.0"}},
}
#: The fake device's per-run cost outside every operator (us).
OFFSET_US = 25.0
F32 = 4


def conv_us(macs: int, nbytes: int, k: int) -> float:
    """The fake device's convolution: a fixed cost, 0.4 GB/s, and 2 GMAC/s for a kxk kernel but
    3 GMAC/s for a 1x1 one (a GEMM), so the time is not a line in MACs and bytes (us)."""
    return 3.0 + macs / (3000.0 if k == 1 else 2000.0) + nbytes / 400.0


def relu_us(nbytes: int) -> float:
    return 1.0 + nbytes / 8000.0


def reduce_us(nbytes: int) -> float:
    return 2.0 + nbytes / 6000.0


CONCAT_US = 4.0


def _cost(
    i: int,
    name: str,
    op_type: str,
    macs: int,
    in_b: int,
    w_b: int,
    out_b: int,
    shape: tuple[int, ...],
) -> OpCost:
    return OpCost(
        i, name, op_type, macs, 0, w_b // F32, in_b + w_b + out_b, shape, in_b, w_b, out_b
    )


class Builder:
    """Appends nodes of one synthetic ONNX graph."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def add(
        self,
        op_type: str,
        inputs: Sequence[str],
        out: str,
        in_shapes: Sequence[tuple[int, ...]],
        out_shape: tuple[int, ...],
        macs: int = 0,
        w_b: int = 0,
        attrs: dict[str, Any] | None = None,
    ) -> Node:
        i = len(self.nodes)
        name = f"node_{op_type}_{i}"
        in_b = sum(math.prod(s) * F32 for s in in_shapes)
        out_b = math.prod(out_shape) * F32
        node = Node(
            i,
            name,
            op_type,
            tuple(inputs),
            (out,),
            tuple(in_shapes),
            out_shape,
            _cost(i, name, op_type, macs, in_b, w_b, out_b, out_shape),
            attrs or {},
        )
        self.nodes.append(node)
        return node

    def graph(self) -> Graph:
        ops = [n.cost for n in self.nodes]
        cost = GraphCost("onnx", ops, sum(o.macs for o in ops), 0, 0, 0, 0, 0, 0, 0)
        return Graph("onnx", self.nodes, cost)


def conv_model(cin: int, hw: int, convs: Sequence[tuple[int, int, int]]) -> Graph:
    """A kernel model: ``convs`` are (cout, k, s) blocks with ReLU on a ``(1, cin, hw, hw)`` input."""
    b = Builder()
    x = (1, cin, hw, hw)
    b.add(
        "Conv",
        ["input"],
        "stem",
        [x],
        x,
        macs=cin * hw * hw,
        w_b=cin * F32,
        attrs={"k": 1, "s": 1, "g": cin},
    )
    pooled = []
    for j, (cout, k, s) in enumerate(convs):
        o = math.ceil(hw / s)
        y = (1, cout, o, o)
        b.add(
            "Conv",
            ["stem"],
            f"c{j}",
            [x],
            y,
            macs=o * o * cout * cin * k * k,
            w_b=cout * cin * k * k * F32,
            attrs={"k": k, "s": s, "g": 1},
        )
        b.add("Relu", [f"c{j}"], f"r{j}", [y], y)
        b.add("ReduceMean", [f"r{j}"], f"p{j}", [y], (1, cout, 1, 1))
        pooled.append(f"p{j}")
    b.add(
        "Concat",
        pooled,
        "out",
        [(1, c, 1, 1) for c, _, _ in convs],
        (1, sum(c for c, _, _ in convs), 1, 1),
    )
    return b.graph()


def fake_rows(graph: Graph) -> list[OpRow]:
    """The fake device's profile of a graph: ops.csv rows in execution order."""
    rows: list[OpRow] = []
    for n in graph.nodes:
        if n.type == "Relu":
            continue  # fused into the convolution before it, as ORT does
        if n.type == "Conv":
            t = conv_us(n.cost.macs, n.cost.bytes, n.attrs["k"])
            relu = next(
                (m for m in graph.nodes if m.type == "Relu" and m.inputs == n.outputs), None
            )
            if relu is not None:
                t += relu_us(relu.cost.bytes)
        elif n.type == "ReduceMean":
            t = reduce_us(n.cost.bytes)
        else:
            t = CONCAT_US
        rows.append(OpRow(op_name=n.name, op_type=n.type, median_us=t, graph_ops=n.name))
    return rows


def fake_e2e_us(graph: Graph) -> float:
    return sum(r.median_us or 0.0 for r in fake_rows(graph)) + OFFSET_US


def random_convs(rng: random.Random, n: int) -> list[tuple[int, int, int]]:
    return [
        (rng.choice((8, 16, 24, 32, 48, 64, 96, 128)), rng.choice((1, 3, 5)), rng.choice((1, 2)))
        for _ in range(n)
    ]


def random_model(rng: random.Random, blocks: int | None = None) -> Graph:
    n = blocks if blocks is not None else rng.randint(2, 9)
    return conv_model(rng.choice((8, 16, 32, 64)), rng.choice((7, 14, 28)), random_convs(rng, n))


def fake_predictor() -> Predictor:
    """A predictor fitted on 30 random models measured on the fake device, every third drawn
    "from the resnet family" (so a fold without that family has something to drop)."""
    rng = random.Random(5)
    m = Measured()
    for i in range(30):
        g = random_model(rng)
        origin = "resnet" if i % 3 == 0 else "random"
        m.add(measure_artifact(g, fake_rows(g), origin, f"m{i}", fake_e2e_us(g)))
    return Predictor.fit(m, FINGERPRINT, seed=0)
