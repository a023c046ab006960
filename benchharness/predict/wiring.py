"""An exported graph as the predictor sees it: operators with their wiring, attributes and cost.

``cost/artifact_cost.py`` gives each operator's MACs, bytes and output shape; kernel detection also
needs
what feeds what (a ReLU is fused into the convolution that produces its input) and the
configuration of convolutions and pools (kernel, stride, groups). This module reads just that from
the artifact, without a second shape inference: input shapes come from the producing operator's
output shape in the cost (or from the graph's inputs), and every operator keeps the
``cost/artifact_cost.py`` index (its position in the ONNX ``graph.node`` list, the TFLite node
index), so
profiles, cost and wiring join on it.

Shapes are reported in one layout whatever the format: ``chw(shape)`` is (channels, height, width)
of a 4-d tensor (NCHW in ONNX, NHWC in TFLite), and (last dim, 1, 1) for other ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchharness.cost.artifact_cost import graph_cost
from benchharness.cost.records import GraphCost, OpCost
from benchharness.errors import CostError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Node:
    """One operator: its cost, its activation inputs and outputs, and its configuration.

    ``attrs`` holds what the format's node says, normalised: ``k`` (kernel height), ``s`` (stride),
    ``g`` (groups), ``act`` (TFLite's fused activation, ``NONE`` when none), ``mode`` (resize).
    """

    index: int
    name: str
    type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    in_shapes: tuple[Shape | None, ...]
    out_shape: Shape
    cost: OpCost
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """The operators of one artifact in execution order, with who produces and consumes what."""

    format: str
    nodes: list[Node]
    cost: GraphCost
    producer: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, list[int]] = field(default_factory=dict)
    by_index: dict[int, Node] = field(default_factory=dict)
    by_name: dict[str, Node] = field(default_factory=dict)
    # the artifact read, where there is one: a runtime can be asked what it runs for it
    # (predict/runtime_view.py)
    path: Path | None = None

    def __post_init__(self) -> None:
        for node in self.nodes:
            self.by_index[node.index] = node
            self.by_name[node.name] = node
            for t in node.outputs:
                self.producer[t] = node.index
            for t in dict.fromkeys(node.inputs):
                self.consumers.setdefault(t, []).append(node.index)

    def producers_of(self, node: Node) -> list[Node]:
        return [self.by_index[self.producer[t]] for t in node.inputs if t in self.producer]

    def consumers_of(self, node: Node) -> list[Node]:
        seen: dict[int, Node] = {}
        for t in node.outputs:
            for i in self.consumers.get(t, []):
                seen.setdefault(i, self.by_index[i])
        return list(seen.values())


def chw(shape: Shape | None, fmt: str) -> tuple[int, int, int]:
    """(channels, height, width) of an activation shape; a non-image tensor is (last, 1, 1)."""
    if not shape:
        return (1, 1, 1)
    if len(shape) == 4:
        if fmt == "tflite":
            return (shape[3], shape[1], shape[2])
        return (shape[1], shape[2], shape[3])
    return (shape[-1], 1, 1)


def read_graph(path: Path, fmt: str, sha256: str = "") -> Graph:
    """The predictor's view of an exported artifact; raises CostError when it cannot be read."""
    cost = graph_cost(path, fmt, sha256)
    if fmt == "onnx":
        graph = _onnx_graph(path, cost)
    elif fmt == "tflite":
        graph = _tflite_graph(path, cost)
    else:
        raise CostError(f"no graph reader for the {fmt} format")
    graph.path = path
    return graph


def _shapes_in(inputs: Sequence[str], known: dict[str, Shape]) -> tuple[Shape | None, ...]:
    return tuple(known.get(t) for t in inputs)


# --- ONNX ---------------------------------------------------------------------------------------


def _onnx_attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _onnx_graph(path: Path, cost: GraphCost) -> Graph:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and OSError alike
        raise CostError(f"cannot read ONNX model {path}: {exc}") from exc
    g = proto.graph
    constants = {i.name for i in g.initializer}
    dims = {i.name: tuple(int(d) for d in i.dims) for i in g.initializer}
    known: dict[str, Shape] = {}
    for vi in g.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if shape and all(d > 0 for d in shape):
            known[vi.name] = tuple(shape)
    costs = {op.op_index: op for op in cost.ops}
    nodes: list[Node] = []
    for index, node in enumerate(g.node):
        outputs = tuple(o for o in node.output if o)
        ins = [i for i in node.input if i]
        if node.op_type == "Constant" or (ins and all(i in constants for i in ins)):
            constants.update(outputs)  # folded at load time: a weight, not an operator
            continue
        op = costs.get(index)
        if op is None:
            continue
        inputs = tuple(dict.fromkeys(i for i in ins if i not in constants))
        attrs: dict[str, Any] = {}
        if node.op_type in ("Conv", "ConvTranspose"):
            w = dims.get(node.input[1], ()) if len(node.input) > 1 else ()
            kernel = _onnx_attr(node, "kernel_shape", list(w[2:]) or [1])
            attrs = {
                "k": int(kernel[0]),
                "s": int(_onnx_attr(node, "strides", [1])[0]),
                "g": int(_onnx_attr(node, "group", 1)),
            }
        elif node.op_type in ("MaxPool", "AveragePool"):
            attrs = {
                "k": int(_onnx_attr(node, "kernel_shape", [1])[0]),
                "s": int(_onnx_attr(node, "strides", [1])[0]),
            }
        elif node.op_type == "Resize":
            mode = _onnx_attr(node, "mode", b"nearest")
            attrs = {"mode": mode.decode() if isinstance(mode, bytes) else str(mode)}
        nodes.append(
            Node(
                index=index,
                name=op.op_name,
                type=node.op_type,
                inputs=inputs,
                outputs=outputs,
                in_shapes=_shapes_in(inputs, known),
                out_shape=tuple(op.output_shape),
                cost=op,
                attrs=attrs,
            )
        )
        if outputs:
            known[outputs[0]] = tuple(op.output_shape)
    return Graph("onnx", nodes, cost)


# --- TFLite -------------------------------------------------------------------------------------


def _tflite_graph(path: Path, cost: GraphCost) -> Graph:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:
        raise CostError("reading TFLite files needs ai-edge-litert's flatbuffer schema") from exc
    buf = path.read_bytes()
    model = schema.Model.GetRootAs(buf, 0)
    sg = model.Subgraphs(0)

    def shape(t: int) -> Shape:
        tensor = sg.Tensors(t)
        return tuple(int(tensor.Shape(j)) for j in range(tensor.ShapeLength()))

    def constant(t: int) -> bool:
        b = sg.Tensors(t).Buffer()
        if b <= 0 or b >= model.BuffersLength():
            return False
        buffer = model.Buffers(b)
        return bool(buffer.DataLength() > 0 or (buffer.Offset() > 1 and buffer.Size() > 0))

    acts = {v: k for k, v in vars(schema.ActivationFunctionType).items() if isinstance(v, int)}
    option_names = {v: k for k, v in vars(schema.BuiltinOptions).items() if isinstance(v, int)}
    costs = {op.op_index: op for op in cost.ops}
    nodes: list[Node] = []
    for index in range(sg.OperatorsLength()):
        op = sg.Operators(index)
        c = costs.get(index)
        if c is None:
            continue
        raw = [int(t) for t in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(t) for t in op.OutputsAsNumpy()] if op.OutputsLength() else []
        act_in = [t for t in dict.fromkeys(raw) if t >= 0 and not constant(t)]
        opts = _tflite_options(schema, option_names, op)
        attrs: dict[str, Any] = {}
        if opts is not None and hasattr(opts, "FusedActivationFunction"):
            attrs["act"] = acts.get(opts.FusedActivationFunction(), "NONE")
        if c.op_type in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(raw) > 1:
            w = shape(raw[1])
            cin = shape(raw[0])[-1] if raw[0] >= 0 and shape(raw[0]) else 1
            groups = cin if c.op_type == "DEPTHWISE_CONV_2D" else max(1, cin // max(1, w[3]))
            attrs.update(k=int(w[1]), s=int(opts.StrideH()) if opts else 1, g=int(groups))
        elif c.op_type in ("MAX_POOL_2D", "AVERAGE_POOL_2D") and opts is not None:
            attrs.update(k=int(opts.FilterHeight()), s=int(opts.StrideH()))
        elif c.op_type.startswith("RESIZE_"):
            attrs["mode"] = "bilinear" if c.op_type == "RESIZE_BILINEAR" else "nearest"
        nodes.append(
            Node(
                index=index,
                name=c.op_name,
                type=c.op_type,
                inputs=tuple(str(t) for t in act_in),
                outputs=tuple(str(t) for t in outs),
                in_shapes=tuple(shape(t) for t in act_in),
                out_shape=tuple(c.output_shape),
                cost=c,
                attrs=attrs,
            )
        )
    return Graph("tflite", nodes, cost)


def _tflite_options(schema: Any, option_names: dict[int, str], op: Any) -> Any | None:
    name = option_names.get(op.BuiltinOptionsType())
    table = op.BuiltinOptions()
    cls = getattr(schema, name, None) if name and name != "NONE" else None
    if cls is None or table is None:
        return None
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts
