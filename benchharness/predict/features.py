"""A kernel's type and the numbers a regressor sees: configuration, MACs, bytes, context.

The **key** chooses the regressor: the head node's operator type, with convolutions split into
plain, grouped and depthwise ones (their kernels differ in every runtime). The **features** are
the same for every key, so one table holds them all:

* configuration: input and output channels and sides, kernel, stride, groups (0 when the head
  has none), channel alignment (the NCHWc and SIMD blockings are multiples of 4, 8 and 16);
* cost from ``cost/artifact_cost.py`` summed over the kernel's nodes: MACs, element-wise FLOPs,
  params, bytes in, out and of weights;
* cost as a SIMD kernel pays it: MACs with the vectorised channels rounded up to whole tiles
  (``macs_tiled``: a depthwise convolution of 4 channels costs a 16-channel one per pixel), and
  output pixels (a fixed cost per pixel, which a concatenation of thin NHWC tensors is made of);
* what the runtime fused into it: a count per member type (``m:Relu``) and TFLite's fused
  activation (``act:RELU6``);
* context: how many inputs the head has, whether one is broadcast (an SE scale), whether its
  input comes from a convolution kernel (ORT's reorders between layouts follow from that).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from benchharness.predict.join import Kernel
from benchharness.predict.wiring import Graph, chw

#: Operator types of convolutions, whose key says plain, grouped or depthwise.
CONV_TYPES = frozenset({"Conv", "CONV_2D", "DEPTHWISE_CONV_2D"})
#: Numeric features every kernel has (log-scaled ones are sizes, the rest flags and small ints).
SIZE_FEATURES = (
    "cin",
    "hin",
    "win",
    "cout",
    "hout",
    "wout",
    "k",
    "s",
    "g",
    "macs",
    "macs_tiled",
    "pixels",
    "flops",
    "params",
    "in_bytes",
    "out_bytes",
    "weight_bytes",
    "n_nodes",
    "n_inputs",
)
#: Channels a SIMD kernel processes at once, the unit ``macs_tiled`` rounds up to: AVX-512's 16
#: floats, the widest of the CPUs measured; a narrower tile's padding is a part of this one's,
#: and the regressors weigh ``macs`` against ``macs_tiled`` per device.
CHANNEL_TILE = 16
FLAG_FEATURES = (
    "cin_mod4",
    "cin_mod8",
    "cin_mod16",
    "cout_mod4",
    "cout_mod8",
    "cout_mod16",
    "broadcast",
    "after_conv",
    "depthwise",
)


def kernel_key(kernel: Kernel, fmt: str) -> str:
    """The regressor a kernel belongs to: its head's type, convolutions by kind."""
    head = kernel.head
    if head.type in ("Conv", "CONV_2D"):
        g = int(head.attrs.get("g", 1))
        cin = chw(head.in_shapes[0] if head.in_shapes else None, fmt)[0]
        if g > 1 and g == cin:
            return f"{head.type}/dw"
        if g > 1:
            return f"{head.type}/grouped"
    return head.type


def kernel_features(
    kernel: Kernel, graph: Graph, owner: Mapping[int, Kernel] | None = None
) -> dict[str, float]:
    """The feature row of one kernel (``owner`` maps node index -> kernel, for the context)."""
    fmt = graph.format
    head = kernel.head
    first = min(kernel.nodes, key=lambda n: n.index)
    tail = kernel.tail
    ins = [s for s in first.in_shapes if s is not None] or [s for s in head.in_shapes if s]
    cin, hin, win = chw(ins[0] if ins else None, fmt)
    cout, hout, wout = chw(tail.out_shape, fmt)
    members = {n.index for n in kernel.nodes}
    in_bytes = sum(
        n.cost.input_bytes
        for n in kernel.nodes
        if not any(graph.producer.get(t) in members for t in n.inputs)
    )
    g = int(head.attrs.get("g", 0))
    elems = [math.prod(s) for s in head.in_shapes if s]
    macs = sum(n.cost.macs for n in kernel.nodes)
    row: dict[str, float] = {
        "cin": cin,
        "hin": hin,
        "win": win,
        "cout": cout,
        "hout": hout,
        "wout": wout,
        "k": int(head.attrs.get("k", 0)),
        "s": int(head.attrs.get("s", 0)),
        "g": g,
        "macs": macs,
        "macs_tiled": macs * _tile_factor(cin, cout, g),
        "pixels": hout * wout,
        "flops": sum(n.cost.flops for n in kernel.nodes),
        "params": sum(n.cost.params for n in kernel.nodes),
        "in_bytes": in_bytes,
        "out_bytes": tail.cost.output_bytes,
        "weight_bytes": sum(n.cost.weight_bytes for n in kernel.nodes),
        "n_nodes": len(kernel.nodes),
        "n_inputs": len(head.inputs),
        "cin_mod4": float(cin % 4 == 0),
        "cin_mod8": float(cin % 8 == 0),
        "cin_mod16": float(cin % 16 == 0),
        "cout_mod4": float(cout % 4 == 0),
        "cout_mod8": float(cout % 8 == 0),
        "cout_mod16": float(cout % 16 == 0),
        "broadcast": float(len(set(elems)) > 1),
        "after_conv": 0.0,
        "depthwise": float(g > 1 and g == cin),
    }
    if owner is not None:
        for p in graph.producers_of(first):
            k = owner.get(p.index)
            if k is not None and k is not kernel and k.head.type in CONV_TYPES:
                row["after_conv"] = 1.0
    for n in kernel.nodes:
        if n is not head:
            row[f"m:{n.type}"] = row.get(f"m:{n.type}", 0.0) + 1.0
    act = head.attrs.get("act")
    if act and act != "NONE":
        row[f"act:{act}"] = 1.0
    return row


def _tile_factor(cin: int, cout: int, g: int) -> float:
    """How much a kernel's MACs grow when its vectorised channels are padded to whole tiles:
    a depthwise convolution vectorises its channels, any other convolution the output channels
    of one group."""
    lanes = cin if g > 1 and g == cin else cout // max(g, 1)
    if lanes <= 0:
        return 1.0
    return math.ceil(lanes / CHANNEL_TILE) * CHANNEL_TILE / lanes


def owner_map(kernels: Sequence[Kernel]) -> dict[int, Kernel]:
    return {n.index: k for k in kernels for n in k.nodes}


def vector(row: Mapping[str, float], columns: Sequence[str]) -> list[float]:
    """A feature row as the regressor's input: sizes log-scaled, flags and counts as they are."""
    out = []
    for c in columns:
        v = float(row.get(c, 0.0))
        out.append(math.log1p(max(v, 0.0)) if c in SIZE_FEATURES else v)
    return out


def columns_of(rows: Sequence[Mapping[str, float]]) -> list[str]:
    """The feature columns of a training set: the fixed ones, then every member/act flag seen."""
    extra = sorted(
        {c for r in rows for c in r if c not in SIZE_FEATURES and c not in FLAG_FEATURES}
    )
    return [*SIZE_FEATURES, *FLAG_FEATURES, *extra]
