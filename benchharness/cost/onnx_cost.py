"""Per-operator MACs, element-wise FLOPs, params and bytes of an ONNX graph.

Why not ``onnx-tool``: it is installed and fast, and its MACs of Conv/Gemm agree with torch, but
it folds element-wise work into the same MAC column with conventions of its own (32 per sigmoid
element, per-element charges for Relu/Add, ...), runs its own shape inference next to ONNX's, and
gives no liveness or per-tensor byte split. Undoing its conventions op type by op type would be as
much code as the rules themselves, and harder to check. So this module computes everything
directly from the shapes of ``onnx.shape_inference.infer_shapes`` (the dynamo exporter's graphs
already carry most ``value_info``; inference fills the rest): a handful of MAC formulas, one table
of per-element FLOP charges (the constants of :mod:`benchharness.cost.records`), and byte counts
from dtypes and shapes.

Operators with no rule (control flow, recurrent cells, custom domains, ...) get 0 MACs and 0 FLOPs
and are listed in ``GraphCost.uncounted_op_types``; their bytes still count. Only the main graph
is walked; subgraphs of ``If``/``Loop`` are not.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto

from benchharness.cost import records as cm
from benchharness.cost.records import GraphCost
from benchharness.errors import CostError

#: Bits per element of each ONNX dtype; sub-byte types are packed, so bytes = ceil(n * bits / 8).
_DTYPE_BITS_BY_NAME: dict[str, int] = {
    "FLOAT": 32,
    "UINT8": 8,
    "INT8": 8,
    "UINT16": 16,
    "INT16": 16,
    "INT32": 32,
    "INT64": 64,
    "BOOL": 8,
    "FLOAT16": 16,
    "DOUBLE": 64,
    "UINT32": 32,
    "UINT64": 64,
    "COMPLEX64": 64,
    "COMPLEX128": 128,
    "BFLOAT16": 16,
    "FLOAT8E4M3FN": 8,
    "FLOAT8E4M3FNUZ": 8,
    "FLOAT8E5M2": 8,
    "FLOAT8E5M2FNUZ": 8,
    "FLOAT8E8M0": 8,
    "UINT4": 4,
    "INT4": 4,
    "FLOAT4E2M1": 4,
    "UINT2": 2,
    "INT2": 2,
}
_ONNX_DTYPES: dict[str, int] = dict(TensorProto.DataType.items())
DTYPE_BITS: dict[int, int] = {
    _ONNX_DTYPES[name]: bits
    for name, bits in _DTYPE_BITS_BY_NAME.items()
    if name in _ONNX_DTYPES  # older onnx releases lack the newest types
}

#: Constants of these dtypes are weights (float, or integer-quantised); int32/int64/bool constants
#: are shapes, axes and indices, which nobody counts as parameters.
_WEIGHT_DTYPE_NAMES = (
    "FLOAT",
    "FLOAT16",
    "BFLOAT16",
    "DOUBLE",
    "UINT8",
    "INT8",
    "UINT16",
    "INT16",
    "UINT4",
    "INT4",
    "FLOAT8E4M3FN",
    "FLOAT8E4M3FNUZ",
    "FLOAT8E5M2",
    "FLOAT8E5M2FNUZ",
    "FLOAT4E2M1",
)
WEIGHT_DTYPES = frozenset(_ONNX_DTYPES[n] for n in _WEIGHT_DTYPE_NAMES if n in _ONNX_DTYPES)

#: int32 constants that *are* weights: the bias of quantised convolutions (op type -> input index).
INT32_BIAS_INPUTS: dict[str, int] = {"QLinearConv": 8}

# --- FLOPs per output element, by op type ---------------------------------------------------

_SIMPLE_OPS = [
    "Relu",
    "LeakyRelu",
    "PRelu",
    "ThresholdedRelu",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Clip",
    "Neg",
    "Abs",
    "Reciprocal",
    "Pow",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Equal",
    "Less",
    "LessOrEqual",
    "Greater",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "Not",
    "Where",
    "Mod",
    "BitShift",
    "Shrink",
    "IsNaN",
    "IsInf",
    "Hardmax",
    "CumSum",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
    "BitwiseNot",
]
_TRANSCENDENTAL_OPS = [
    "Exp",
    "Log",
    "Sqrt",
    "Erf",
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
]

FLOPS_PER_OUTPUT: dict[str, int] = {
    **dict.fromkeys(_SIMPLE_OPS, cm.SIMPLE_FLOPS),
    **dict.fromkeys(_TRANSCENDENTAL_OPS, cm.TRANSCENDENTAL_FLOPS),
    "Sigmoid": cm.SIGMOID_FLOPS,
    "Tanh": cm.TANH_FLOPS,
    "HardSigmoid": cm.HARD_SIGMOID_FLOPS,
    "HardSwish": cm.HARD_SWISH_FLOPS,
    "Swish": cm.SIGMOID_FLOPS + cm.SIMPLE_FLOPS,
    "Gelu": cm.GELU_FLOPS,
    "Elu": cm.ELU_FLOPS,
    "Selu": cm.ELU_FLOPS,
    "Celu": cm.ELU_FLOPS,
    "Softplus": cm.SOFTPLUS_FLOPS,
    "Softsign": 3 * cm.SIMPLE_FLOPS,  # abs, add 1, divide
    "Mish": cm.SOFTPLUS_FLOPS + cm.TANH_FLOPS + cm.SIMPLE_FLOPS,
    "Softmax": cm.SOFTMAX_FLOPS,
    "LogSoftmax": cm.SOFTMAX_FLOPS,
    "BatchNormalization": cm.BATCHNORM_FLOPS,
    "LayerNormalization": cm.NORMALIZATION_FLOPS,
    "InstanceNormalization": cm.NORMALIZATION_FLOPS,
    "GroupNormalization": cm.NORMALIZATION_FLOPS,
    "MeanVarianceNormalization": cm.NORMALIZATION_FLOPS,
    "RMSNormalization": cm.NORMALIZATION_FLOPS,
    "LpNormalization": cm.NORMALIZATION_FLOPS,
    "QuantizeLinear": cm.CONVERT_FLOPS,
    "DequantizeLinear": cm.CONVERT_FLOPS,
    "DynamicQuantizeLinear": cm.CONVERT_FLOPS,
    "Cast": cm.CONVERT_FLOPS,
    "CastLike": cm.CONVERT_FLOPS,
}

#: Reductions: FLOPs per *input* element.
FLOPS_PER_INPUT: dict[str, int] = {
    **dict.fromkeys(
        [
            "GlobalAveragePool",
            "GlobalMaxPool",
            "ReduceMean",
            "ReduceSum",
            "ReduceMax",
            "ReduceMin",
            "ReduceProd",
            "ReduceL1",
            "ArgMax",
            "ArgMin",
        ],
        cm.REDUCE_FLOPS_PER_INPUT,
    ),
    # square (or abs-power / exp) then accumulate
    **dict.fromkeys(
        ["GlobalLpPool", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"],
        2 * cm.REDUCE_FLOPS_PER_INPUT,
    ),
}

#: Pooling with a window: FLOPs = output elements * window area.
WINDOW_POOL_OPS = frozenset({"MaxPool", "AveragePool", "LpPool"})

#: Variadic element-wise ops: (inputs - 1) operations per output element (``Mean`` adds a divide).
VARIADIC_OPS = frozenset({"Max", "Min", "Sum", "Mean"})

#: Pure data movement: no arithmetic, but their bytes are counted.
DATA_MOVEMENT_OPS = frozenset(
    [
        "Reshape",
        "Transpose",
        "Concat",
        "Split",
        "Flatten",
        "Shape",
        "Size",
        "Gather",
        "GatherElements",
        "GatherND",
        "Slice",
        "Squeeze",
        "Unsqueeze",
        "Pad",
        "Identity",
        "Expand",
        "Tile",
        "DepthToSpace",
        "SpaceToDepth",
        "Constant",
        "ConstantOfShape",
        "Range",
        "Dropout",
        "ScatterND",
        "ScatterElements",
        "NonZero",
        "Compress",
        "ReverseSequence",
        "Trilu",
        "EyeLike",
        "OneHot",
        "SplitToSequence",
        "ConcatFromSequence",
    ]
)

#: Convolutions: op type -> index of the weight input.
CONV_WEIGHT_INPUT: dict[str, int] = {"Conv": 1, "FusedConv": 1, "ConvInteger": 1, "QLinearConv": 3}
#: Matrix products: op type -> index of the ``A`` input (``B`` comes next, or 3 after A's qparams).
MATMUL_A_INPUT: dict[str, int] = {
    "MatMul": 0,
    "MatMulInteger": 0,
    "QLinearMatMul": 0,
    "Gemm": 0,
    "FusedGemm": 0,
    "FusedMatMul": 0,
}


@dataclass(frozen=True)
class _Tensor:
    elem_type: int
    shape: tuple[int, ...] | None  # None: unknown rank or a symbolic dimension

    @property
    def nbytes(self) -> int:
        if self.shape is None:
            raise ValueError("unknown shape")
        bits = DTYPE_BITS.get(self.elem_type)
        if bits is None:
            # strings and undefined types have no fixed size; charge nothing rather than guess
            return 0
        return math.ceil(math.prod(self.shape) * bits / 8)


def onnx_cost(model: str | os.PathLike[str] | onnx.ModelProto) -> GraphCost:
    """Count MACs, FLOPs, params and bytes of every operator of an ONNX model.

    ``model`` is a path (external data files are counted in ``model_bytes`` but not loaded) or an
    in-memory ``ModelProto`` (then ``model_bytes`` is its serialised size). Raises
    :class:`~benchharness.errors.CostError` when the file is unreadable or a tensor's shape cannot
    be inferred (e.g. a symbolic batch dimension).
    """
    proto, model_bytes, label = _load(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)
    except Exception as exc:  # onnx raises several unrelated types for malformed graphs
        raise CostError(
            f"ONNX shape inference failed for {label}: {exc}; re-export the model or check it "
            "with onnx.checker"
        ) from exc
    return _graph_cost(inferred.graph, model_bytes, label)


def _load(model: str | os.PathLike[str] | onnx.ModelProto) -> tuple[onnx.ModelProto, int, str]:
    if isinstance(model, onnx.ModelProto):
        return model, model.ByteSize(), "<in-memory ONNX model>"
    path = Path(model)
    if not path.is_file():
        raise CostError(f"ONNX model {path} does not exist; export it first or check the path")
    try:
        # weights are only needed for their dims, which the proto carries without the data
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and OSError alike
        raise CostError(f"cannot read ONNX model {path}: {exc}; is it an .onnx file?") from exc
    size = path.stat().st_size
    seen: set[Path] = set()
    for init in proto.graph.initializer:
        if init.data_location != TensorProto.EXTERNAL:
            continue
        for entry in init.external_data:
            if entry.key == "location":
                data_path = path.parent / entry.value
                if data_path not in seen and data_path.is_file():
                    seen.add(data_path)
                    size += data_path.stat().st_size
    return proto, size, str(path)


def _type_of(value: onnx.ValueInfoProto) -> _Tensor | None:
    tt = value.type.tensor_type if value.type.HasField("tensor_type") else None
    if tt is None:
        return None
    if not tt.HasField("shape"):
        return _Tensor(tt.elem_type, None)
    dims: list[int] = []
    for d in tt.shape.dim:
        if d.WhichOneof("value") != "dim_value":
            return _Tensor(tt.elem_type, None)
        dims.append(d.dim_value)
    return _Tensor(tt.elem_type, tuple(dims))


def _constant_node_tensor(node: onnx.NodeProto) -> _Tensor | None:
    for attr in node.attribute:
        if attr.name in ("value", "sparse_value"):
            t = attr.t if attr.name == "value" else attr.sparse_tensor.values
            dims = tuple(attr.t.dims) if attr.name == "value" else tuple(attr.sparse_tensor.dims)
            return _Tensor(t.data_type, dims)
        if attr.name == "value_float":
            return _Tensor(TensorProto.FLOAT, ())
        if attr.name == "value_floats":
            return _Tensor(TensorProto.FLOAT, (len(attr.floats),))
        if attr.name == "value_int":
            return _Tensor(TensorProto.INT64, ())
        if attr.name == "value_ints":
            return _Tensor(TensorProto.INT64, (len(attr.ints),))
    return None


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


@dataclass
class _Shapes:
    """The graph's known tensors, read so that a missing static shape says where it is needed."""

    tensors: dict[str, _Tensor]
    label: str

    def shape(self, name: str, node: onnx.NodeProto) -> tuple[int, ...]:
        t = self.tensors.get(name)
        if t is None or t.shape is None:
            raise CostError(
                f"{self.label}: the shape of tensor {name!r} (at node "
                f"{node.name or node.op_type!r}) is unknown or symbolic; export the model with "
                "static input shapes"
            )
        return t.shape

    def nbytes(self, name: str, node: onnx.NodeProto) -> int:
        self.shape(name, node)
        return self.tensors[name].nbytes


def _is_constant_node(node: onnx.NodeProto) -> bool:
    return node.op_type == "Constant" and node.domain in ("", "ai.onnx")


def _known_tensors(graph: onnx.GraphProto) -> tuple[dict[str, _Tensor], set[str]]:
    """Every tensor whose type is declared, and the names of the stored constants among them
    (initializers and Constant nodes' outputs)."""
    tensors: dict[str, _Tensor] = {}
    for vi in (*graph.input, *graph.value_info, *graph.output):
        t = _type_of(vi)
        if t is not None and (vi.name not in tensors or tensors[vi.name].shape is None):
            tensors[vi.name] = t
    source_constants: set[str] = set()
    for init in graph.initializer:
        tensors[init.name] = _Tensor(init.data_type, tuple(init.dims))
        source_constants.add(init.name)
    for node in graph.node:
        if _is_constant_node(node):
            t = _constant_node_tensor(node)
            if t is not None and (node.output[0] not in tensors or t.shape is not None):
                tensors[node.output[0]] = t
            source_constants.add(node.output[0])
    return tensors, source_constants


def _graph_cost(graph: onnx.GraphProto, model_bytes: int, label: str) -> GraphCost:
    """The cost of a shape-inferred graph, its operators counted in execution order."""
    tensors, source_constants = _known_tensors(graph)
    shapes = _Shapes(tensors, label)
    constants = set(source_constants)  # grows by propagation: ops on constants only
    graph_inputs = [i.name for i in graph.input if i.name not in source_constants]
    graph_outputs = [o.name for o in graph.output]
    tally = cm.Tally("onnx", graph_inputs, graph_outputs)
    param_sources: set[str] = set()  # stored constants some operator reads as a weight
    for name in graph_inputs:
        tally.activation_sizes[name] = shapes.nbytes(name, graph.node[0]) if graph.node else 0
    for index, node in enumerate(graph.node):
        if _is_constant_node(node):
            continue  # a constant is a weight, not an executed operator
        _tally_node(tally, index, node, shapes, constants, source_constants, param_sources)
    total_params, total_weight_bytes = _weight_totals(tensors, source_constants, param_sources)
    return tally.totals(
        params=total_params, weight_bytes=total_weight_bytes, model_bytes=model_bytes
    )


def _tally_node(
    tally: cm.Tally,
    index: int,
    node: onnx.NodeProto,
    shapes: _Shapes,
    constants: set[str],
    source_constants: set[str],
    param_sources: set[str],
) -> None:
    """Count one executed operator into ``tally``; its outputs join ``constants`` when it reads
    constants only, and the stored constants it reads as weights join ``param_sources``."""
    inputs = [n for n in node.input if n]
    outputs = [n for n in node.output if n]
    if inputs and all(n in constants for n in inputs):
        constants.update(outputs)
    moved = cm.traffic(inputs, outputs, constants, lambda name: shapes.nbytes(name, node))
    params = 0
    for pos, n in enumerate(node.input):
        if n and n in constants and _is_weight(node.op_type, pos, shapes.tensors[n]):
            params += math.prod(shapes.shape(n, node))
            if n in source_constants:
                param_sources.add(n)
    macs, flops, known = _compute(node, lambda name: shapes.shape(name, node))
    if not known:
        tally.uncounted.add(node.op_type if not node.domain else f"{node.domain}.{node.op_type}")
    for n in outputs:
        if n not in constants:
            tally.activation_sizes[n] = shapes.nbytes(n, node)
    tally.add(
        index,
        node.name or f"{node.op_type}_{index}",
        node.op_type,
        (macs, flops),
        params=params,
        output_shape=shapes.shape(outputs[0], node) if outputs else (),
        moved=moved,
        writes=[o for o in outputs if o not in constants],
    )


def _weight_totals(
    tensors: dict[str, _Tensor], source_constants: set[str], param_sources: set[str]
) -> tuple[int, int]:
    """(params, weight bytes) over the distinct stored constants: every constant's bytes, the
    elements of those read as weights."""
    total_params = 0
    total_weight_bytes = 0
    for name in source_constants:
        t = tensors.get(name)
        if t is None or t.shape is None:
            continue
        total_weight_bytes += t.nbytes
        if name in param_sources:
            total_params += math.prod(t.shape)
    return total_params, total_weight_bytes


def _is_weight(op_type: str, position: int, tensor: _Tensor) -> bool:
    if not tensor.shape:
        return False  # a rank-0 constant is an attribute in disguise (pad value, 1/6, ...)
    if tensor.elem_type in WEIGHT_DTYPES:
        return True
    return tensor.elem_type == TensorProto.INT32 and INT32_BIAS_INPUTS.get(op_type) == position


def _compute(
    node: onnx.NodeProto, shape: Callable[[str], tuple[int, ...]]
) -> tuple[int, int, bool]:
    """Return ``(macs, flops, known)`` of one node."""
    op = node.op_type
    inputs = list(node.input)
    outputs = [n for n in node.output if n]
    out_elts = math.prod(shape(outputs[0])) if outputs else 0

    if op in CONV_WEIGHT_INPUT:
        weight = shape(inputs[CONV_WEIGHT_INPUT[op]])
        # weight is (C_out, C_in / groups, k...): each output element needs C_in/groups * k MACs
        return out_elts * math.prod(weight[1:]), 0, True
    if op == "ConvTranspose":
        weight = shape(inputs[1])
        # weight is (C_in, C_out / groups, k...): each *input* element scatters into that many
        return math.prod(shape(inputs[0])) * math.prod(weight[1:]), 0, True
    if op in MATMUL_A_INPUT:
        a = shape(inputs[MATMUL_A_INPUT[op]])
        if op in ("Gemm", "FusedGemm") or (op == "FusedMatMul" and len(a) >= 2):
            trans_a = bool(_attr(node, "transA", 0))
            k = a[-2] if trans_a else a[-1]
        else:
            k = a[-1]  # also right for a 1-D A, whose only dimension is K
        return out_elts * k, 0, True
    if op == "Einsum":
        return _einsum_macs(node, shape)

    if op in FLOPS_PER_OUTPUT:
        return 0, out_elts * FLOPS_PER_OUTPUT[op], True
    if op in FLOPS_PER_INPUT:
        return 0, math.prod(shape(inputs[0])) * FLOPS_PER_INPUT[op], True
    if op in WINDOW_POOL_OPS:
        kernel = _attr(node, "kernel_shape", [])
        assert isinstance(kernel, list)
        return 0, out_elts * math.prod(kernel), True
    if op in VARIADIC_OPS:
        n = len([i for i in inputs if i])
        per = n if op == "Mean" else n - 1
        return 0, out_elts * max(per, 0), True
    if op in ("Resize", "Upsample"):
        mode = _attr(node, "mode", b"nearest")
        mode_s = mode.decode() if isinstance(mode, bytes) else str(mode)
        return 0, 0 if mode_s == "nearest" else out_elts * cm.RESIZE_INTERP_FLOPS, True
    if op in DATA_MOVEMENT_OPS:
        return 0, 0, True
    return 0, 0, False


def _einsum_macs(
    node: onnx.NodeProto, shape: Callable[[str], tuple[int, ...]]
) -> tuple[int, int, bool]:
    """A contraction of two or more operands costs the product of all index sizes in MACs."""
    equation = _attr(node, "equation", b"")
    eq = equation.decode() if isinstance(equation, bytes) else str(equation)
    lhs = eq.replace(" ", "").split("->")[0]
    terms = lhs.split(",")
    inputs = [n for n in node.input if n]
    if "." in lhs or len(terms) != len(inputs):
        return 0, 0, False  # ellipsis broadcasting: not worth guessing
    if len(terms) < 2:
        return 0, 0, True  # a transpose, trace or sum of one operand: data movement
    sizes: dict[str, int] = {}
    for term, name in zip(terms, inputs, strict=True):
        dims: Sequence[int] = shape(name)
        for letter, dim in zip(term, dims, strict=False):
            sizes[letter] = max(sizes.get(letter, 1), dim)
    return math.prod(sizes.values()), 0, True
