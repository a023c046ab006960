"""Per-operator MACs, element-wise FLOPs, params and bytes of a TFLite flatbuffer.

The file is read with the flatbuffer schema module that ``ai-edge-litert`` ships
(``ai_edge_litert.schema_py_generated``; ``litert_converter``'s copy is the fallback), not with an
``Interpreter``: the schema gives what the interpreter's op details lack (which tensors are backed
by constant buffers, quantisation parameters, pooling windows, fused activations), it needs no
tensor allocation, and it reads a file lazily, so a 224x224 zoo model costs milliseconds.

Only the primary subgraph (index 0) is walked; control-flow subgraphs are not. ``op_index`` is the
node index of that subgraph, which is the index LiteRT's profiler appends to a node's name, and
``op_name`` is the name the profiler prints for an operator run by the interpreter itself,
``[out_tensor1, out_tensor2]:<node_index>`` (``tflite/profiling/profile_summarizer.cc``). Operators
taken over by a delegate (XNNPACK by default) are profiled under the delegate's own names and can
only be joined by type and order, if at all.

A fused activation (``fused_activation_function`` of CONV_2D, ADD, ...) is charged in ``flops`` as
if it were a separate operator, so the FLOPs of a TFLite graph compare with those of the ONNX
graph, where ReLU is a node of its own.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from benchharness.cost import records as cm
from benchharness.cost.records import GraphCost
from benchharness.errors import CostError


def _schema() -> ModuleType:
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        try:
            from litert_converter import schema_py_generated
        except ImportError as exc:
            raise CostError(
                "reading TFLite files needs the flatbuffer schema shipped with ai-edge-litert; "
                "install it with `pip install ai-edge-litert`"
            ) from exc
    schema: ModuleType = schema_py_generated
    return schema


#: Bits per element by TFLite ``TensorType`` name; sub-byte types are packed.
DTYPE_BITS_BY_NAME: dict[str, int] = {
    "FLOAT32": 32,
    "FLOAT16": 16,
    "INT32": 32,
    "UINT8": 8,
    "INT64": 64,
    "BOOL": 8,
    "INT16": 16,
    "COMPLEX64": 64,
    "INT8": 8,
    "FLOAT64": 64,
    "COMPLEX128": 128,
    "UINT64": 64,
    "UINT32": 32,
    "UINT16": 16,
    "INT4": 4,
    "BFLOAT16": 16,
    "INT2": 2,
    "UINT4": 4,
    "FLOAT8_E4M3FN": 8,
    "FLOAT8_E5M2": 8,
}

#: Constants of these types are weights; INT32 only when quantised (the bias of int8 ops), other
#: integer constants are shapes, axes, permutations and paddings.
WEIGHT_TYPE_NAMES = frozenset(
    [
        "FLOAT32",
        "FLOAT16",
        "BFLOAT16",
        "FLOAT64",
        "INT8",
        "UINT8",
        "INT16",
        "UINT16",
        "INT4",
        "UINT4",
        "INT2",
        "FLOAT8_E4M3FN",
        "FLOAT8_E5M2",
    ]
)

_SIMPLE_OPS = [
    "ADD",
    "SUB",
    "MUL",
    "DIV",
    "MAXIMUM",
    "MINIMUM",
    "RELU",
    "RELU6",
    "RELU_N1_TO_1",
    "RELU_0_TO_1",
    "LEAKY_RELU",
    "PRELU",
    "ABS",
    "NEG",
    "SQUARE",
    "FLOOR",
    "CEIL",
    "ROUND",
    "SIGN",
    "EQUAL",
    "NOT_EQUAL",
    "LESS",
    "LESS_EQUAL",
    "GREATER",
    "GREATER_EQUAL",
    "SELECT",
    "SELECT_V2",
    "LOGICAL_AND",
    "LOGICAL_OR",
    "LOGICAL_NOT",
    "FLOOR_DIV",
    "FLOOR_MOD",
    "POW",
    "CUMSUM",
]

#: FLOPs per output element, by builtin op name.
FLOPS_PER_OUTPUT: dict[str, int] = {
    **dict.fromkeys(_SIMPLE_OPS, cm.SIMPLE_FLOPS),
    **dict.fromkeys(["EXP", "LOG", "SQRT", "RSQRT", "SIN", "COS"], cm.TRANSCENDENTAL_FLOPS),
    "SQUARED_DIFFERENCE": 2 * cm.SIMPLE_FLOPS,  # subtract, square
    "LOGISTIC": cm.SIGMOID_FLOPS,
    "TANH": cm.TANH_FLOPS,
    "HARD_SWISH": cm.HARD_SWISH_FLOPS,
    "GELU": cm.GELU_FLOPS,
    "ELU": cm.ELU_FLOPS,
    "SOFTMAX": cm.SOFTMAX_FLOPS,
    "LOG_SOFTMAX": cm.SOFTMAX_FLOPS,
    "L2_NORMALIZATION": cm.NORMALIZATION_FLOPS,
    "QUANTIZE": cm.CONVERT_FLOPS,
    "DEQUANTIZE": cm.CONVERT_FLOPS,
    "CAST": cm.CONVERT_FLOPS,
    "RESIZE_BILINEAR": cm.RESIZE_INTERP_FLOPS,
}

#: Reductions: FLOPs per *input* element.
FLOPS_PER_INPUT: dict[str, int] = dict.fromkeys(
    [
        "MEAN",
        "SUM",
        "REDUCE_MAX",
        "REDUCE_MIN",
        "REDUCE_PROD",
        "REDUCE_ANY",
        "REDUCE_ALL",
        "ARG_MAX",
        "ARG_MIN",
    ],
    cm.REDUCE_FLOPS_PER_INPUT,
)

#: Windowed pooling: FLOPs = output elements * filter area (``Pool2DOptions``).
POOL_OPS = frozenset({"AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"})

#: No arithmetic, only bytes moved.
DATA_MOVEMENT_OPS = frozenset(
    [
        "RESHAPE",
        "TRANSPOSE",
        "CONCATENATION",
        "SPLIT",
        "SPLIT_V",
        "PAD",
        "PADV2",
        "MIRROR_PAD",
        "SQUEEZE",
        "EXPAND_DIMS",
        "GATHER",
        "GATHER_ND",
        "SLICE",
        "STRIDED_SLICE",
        "PACK",
        "UNPACK",
        "TILE",
        "BROADCAST_TO",
        "DEPTH_TO_SPACE",
        "SPACE_TO_DEPTH",
        "SHAPE",
        "FILL",
        "ZEROS_LIKE",
        "ONES_LIKE",
        "RANGE",
        "SCATTER_ND",
        "REVERSE_V2",
        "SPACE_TO_BATCH_ND",
        "BATCH_TO_SPACE_ND",
        "RESIZE_NEAREST_NEIGHBOR",
    ]
)

#: FLOPs per output element of each ``ActivationFunctionType`` fused into an operator.
FUSED_ACTIVATION_FLOPS: dict[str, int] = {
    "NONE": 0,
    "RELU": cm.SIMPLE_FLOPS,
    "RELU_N1_TO_1": cm.SIMPLE_FLOPS,
    "RELU6": cm.SIMPLE_FLOPS,
    "TANH": cm.TANH_FLOPS,
    "SIGN_BIT": cm.SIMPLE_FLOPS,
}


def _enum_names(enum_class: type) -> dict[int, str]:
    return {
        v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)
    }


class _Reader:
    """Lazy view of one flatbuffer: tensor facts of subgraph 0 and operator options."""

    def __init__(self, buf: bytes, label: str) -> None:
        self.s = _schema()
        self.label = label
        try:
            self.model = self.s.Model.GetRootAs(buf, 0)
            if self.model.SubgraphsLength() < 1:
                raise CostError(f"TFLite model {label} has no subgraph; re-export it")
            self.sg = self.model.Subgraphs(0)
            self.op_names = _enum_names(self.s.BuiltinOperator)
            self.type_names = _enum_names(self.s.TensorType)
            self.option_names = _enum_names(self.s.BuiltinOptions)
            self.act_names = _enum_names(self.s.ActivationFunctionType)
            self.codes = [self._opcode(i) for i in range(self.model.OperatorCodesLength())]
        except CostError:
            raise
        except Exception as exc:  # flatbuffers raises IndexError/struct.error on garbage
            raise CostError(
                f"cannot parse TFLite model {label}: {exc}; is it a .tflite file?"
            ) from exc
        self._shape: dict[int, tuple[int, ...]] = {}

    def _opcode(self, i: int) -> str:
        code = self.model.OperatorCodes(i)
        # builtin_code replaced the deprecated int8 field at 127; files may fill either
        value = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = self.op_names.get(value, f"BUILTIN_{value}")
        if name == "CUSTOM":
            custom = code.CustomCode()
            return custom.decode() if custom else "CUSTOM"
        return name

    def shape(self, t: int) -> tuple[int, ...]:
        if t not in self._shape:
            tensor = self.sg.Tensors(t)
            n = tensor.ShapeLength()
            self._shape[t] = tuple(int(tensor.Shape(j)) for j in range(n))
        return self._shape[t]

    def name(self, t: int) -> str:
        raw = self.sg.Tensors(t).Name()
        return raw.decode("utf-8", "replace") if raw else "Unknown"

    def type_name(self, t: int) -> str:
        return self.type_names.get(self.sg.Tensors(t).Type(), "UNKNOWN")

    def nbytes(self, t: int) -> int:
        bits = DTYPE_BITS_BY_NAME.get(self.type_name(t), 0)  # strings/resources: no fixed size
        return math.ceil(math.prod(self.shape(t)) * bits / 8)

    def is_constant(self, t: int) -> bool:
        tensor = self.sg.Tensors(t)
        b = tensor.Buffer()
        if b <= 0 or b >= self.model.BuffersLength():
            return False  # buffer 0 is the schema's empty sentinel
        buffer = self.model.Buffers(b)
        # data inline, or (models > 2 GB) at an offset after the flatbuffer; offset 1 = none
        return bool(buffer.DataLength() > 0 or (buffer.Offset() > 1 and buffer.Size() > 0))

    def is_weight(self, t: int) -> bool:
        if not self.shape(t):
            return False  # a rank-0 constant is an attribute in disguise (pad value, 1/6, ...)
        type_name = self.type_name(t)
        if type_name in WEIGHT_TYPE_NAMES:
            return True
        if type_name == "INT32":
            q = self.sg.Tensors(t).Quantization()
            return q is not None and q.ScaleLength() > 0
        return False

    def options(self, op: Any) -> Any | None:
        """The operator's builtin options table as its generated class, or None."""
        name = self.option_names.get(op.BuiltinOptionsType())
        table = op.BuiltinOptions()
        cls = getattr(self.s, name, None) if name and name != "NONE" else None
        if cls is None or table is None:
            return None
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts


def tflite_cost(path: str | os.PathLike[str]) -> GraphCost:
    """Count MACs, FLOPs, params and bytes of every operator of a ``.tflite`` model.

    Raises :class:`~benchharness.errors.CostError` when the file is missing or not a TFLite
    flatbuffer.
    """
    p = Path(path)
    if not p.is_file():
        raise CostError(f"TFLite model {p} does not exist; export it first or check the path")
    try:
        buf = p.read_bytes()
    except OSError as exc:
        raise CostError(f"cannot read TFLite model {p}: {exc}") from exc
    r = _Reader(buf, str(p))
    try:
        return _graph_cost(r, len(buf))
    except CostError:
        raise
    except Exception as exc:  # a malformed flatbuffer surfaces deep inside the accessors
        raise CostError(f"cannot read TFLite model {p}: {exc}; re-export it") from exc


def _graph_cost(r: _Reader, model_bytes: int) -> GraphCost:
    sg = r.sg
    graph_inputs = [int(t) for t in sg.InputsAsNumpy()] if sg.InputsLength() else []
    graph_outputs = [int(t) for t in sg.OutputsAsNumpy()] if sg.OutputsLength() else []

    constants = {t for t in range(sg.TensorsLength()) if r.is_constant(t)}
    tally = cm.Tally("tflite", [str(t) for t in graph_inputs], [str(t) for t in graph_outputs])
    param_tensors: set[int] = set()

    for t in graph_inputs:
        if t not in constants:
            tally.activation_sizes[str(t)] = r.nbytes(t)

    for index in range(sg.OperatorsLength()):
        op = sg.Operators(index)
        op_type = r.codes[op.OpcodeIndex()]
        raw_inputs = [int(t) for t in op.InputsAsNumpy()] if op.InputsLength() else []
        outputs = [int(t) for t in op.OutputsAsNumpy()] if op.OutputsLength() else []
        inputs = [t for t in raw_inputs if t >= 0]  # -1 marks an absent optional input

        moved = cm.traffic(inputs, outputs, constants, r.nbytes)
        params = 0
        for t in moved.constants:
            if r.is_weight(t):
                params += math.prod(r.shape(t))
                param_tensors.add(t)

        macs, flops, known = _compute(r, op, op_type, raw_inputs, outputs)
        if not known:
            tally.uncounted.add(op_type)
        for t in outputs:
            tally.activation_sizes[str(t)] = r.nbytes(t)
        tally.add(
            index,
            # the profiler's node name: output tensor names, then the node index
            "[" + ", ".join(r.name(t) for t in outputs) + f"]:{index}",
            op_type,
            (macs, flops),
            params=params,
            output_shape=r.shape(outputs[0]) if outputs else (),
            moved=moved,
            writes=outputs,
        )

    return tally.totals(
        params=sum(math.prod(r.shape(t)) for t in param_tensors),
        weight_bytes=sum(r.nbytes(t) for t in constants),
        model_bytes=model_bytes,
    )


def _compute(
    r: _Reader, op: Any, op_type: str, inputs: Sequence[int], outputs: Sequence[int]
) -> tuple[int, int, bool]:
    """Return ``(macs, flops, known)`` of one operator."""
    out_elts = math.prod(r.shape(outputs[0])) if outputs else 0
    opts = r.options(op)
    fused = 0
    if opts is not None and hasattr(opts, "FusedActivationFunction"):
        act = r.act_names.get(opts.FusedActivationFunction(), "NONE")
        fused = out_elts * FUSED_ACTIVATION_FLOPS.get(act, cm.SIMPLE_FLOPS)

    if op_type == "CONV_2D":
        w = r.shape(inputs[1])  # (C_out, kh, kw, C_in / groups)
        return out_elts * math.prod(w[1:]), fused, True
    if op_type == "DEPTHWISE_CONV_2D":
        w = r.shape(inputs[1])  # (1, kh, kw, C_out): one input channel per output element
        return out_elts * w[1] * w[2], fused, True
    if op_type == "CONV_3D":
        w = r.shape(inputs[1])  # (kd, kh, kw, C_in, C_out)
        return out_elts * math.prod(w[:4]), fused, True
    if op_type == "TRANSPOSE_CONV":
        w = r.shape(inputs[1])  # (C_out, kh, kw, C_in); input 2 is the activation
        return math.prod(r.shape(inputs[2])) * math.prod(w[:3]), fused, True
    if op_type == "CONV_3D_TRANSPOSE":
        w = r.shape(inputs[1])  # (kd, kh, kw, C_out, C_in); input 2 is the activation
        return math.prod(r.shape(inputs[2])) * math.prod(w[:4]), fused, True
    if op_type == "FULLY_CONNECTED":
        w = r.shape(inputs[1])  # (units, in)
        return out_elts * w[-1], fused, True
    if op_type == "BATCH_MATMUL":
        a = r.shape(inputs[0])
        adj_x = bool(opts.AdjX()) if opts is not None and hasattr(opts, "AdjX") else False
        k = a[-2] if adj_x else a[-1]
        return out_elts * k, fused, True

    if op_type in FLOPS_PER_OUTPUT:
        return 0, out_elts * FLOPS_PER_OUTPUT[op_type] + fused, True
    if op_type == "ADD_N":
        return 0, out_elts * max(len(inputs) - 1, 0), True
    if op_type in FLOPS_PER_INPUT:
        return 0, math.prod(r.shape(inputs[0])) * FLOPS_PER_INPUT[op_type], True
    if op_type in POOL_OPS:
        window = opts.FilterWidth() * opts.FilterHeight() if opts is not None else 1
        return 0, out_elts * window + fused, True
    if op_type in DATA_MOVEMENT_OPS:
        return 0, fused, True
    return 0, fused, False
