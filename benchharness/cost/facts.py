"""What a constraint check needs to know of a model: its layers, weights and peak activations.

Zoo models and ``module:function`` models are checked on their ``torch.export`` graph: it names
every layer by its module path, keeps functional operators (residual adds, concatenations,
flatten) that module hooks would miss, and needs no export. Model files (``.onnx``, ``.tflite``)
are checked on their graphs (``benchharness.cost``), whose operator names map onto the same terms.

Operator terms (``OP_TERMS`` and friends; anything unlisted keeps its own name and so is
unsupported unless a profile names it):

====================  =====================================  ====================================
term                  torch (aten)                           ONNX / TFLite
====================  =====================================  ====================================
Conv2d                conv2d, groups = 1                     Conv group=1 / CONV_2D
DepthwiseConv2d       conv2d, groups = in = out/k channels   Conv group=C_in / DEPTHWISE_CONV_2D
GroupedConv2d         conv2d, other groups                   Conv, other groups
BatchNorm2d           batch_norm                             BatchNormalization
ReLU / ReLU6          relu / hardtanh(0, 6)                  Relu, Clip(0,6) / RELU, RELU6
MaxPool2d             max_pool2d, adaptive_max_pool2d        MaxPool, GlobalMaxPool / MAX_POOL_2D
AvgPool2d             avg_pool2d, adaptive_avg_pool2d,       AveragePool, GlobalAveragePool,
                      mean over H and W                      ReduceMean / AVERAGE_POOL_2D, MEAN
Flatten               flatten; a view to (N, features)       Flatten, Reshape to rank 2 / RESHAPE
Linear                linear, addmm                          Gemm, MatMul with a constant /
                                                             FULLY_CONNECTED
====================  =====================================  ====================================

Activation functions, element-wise arithmetic and data movement keep their torch names (SiLU,
Hardswish, Sigmoid, Add, Mul, Concat, Split, Transpose, Reshape, ...). A fused activation of a
TFLite operator is not a separate operator. Pure bookkeeping (dropout at inference, contiguous,
clone, detach) is no operator at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchharness.cost.artifact_cost import graph_cost
from benchharness.cost.records import Step, activation_liveness, flat
from benchharness.errors import CostError, UnknownModelError
from benchharness.zoo.registry import ArtifactRef, ModelRef, ModelSpec
from benchharness.zoo.variants import is_unavailable

#: aten operator (without namespace, overload or in-place ``_``) -> term; convolutions, views and
#: means are decided by their arguments in ``_torch_term``.
OP_TERMS: dict[str, str] = {
    "batch_norm": "BatchNorm2d",
    "_native_batch_norm_legit_no_training": "BatchNorm2d",
    "relu": "ReLU",
    "relu6": "ReLU6",
    "max_pool2d": "MaxPool2d",
    "max_pool2d_with_indices": "MaxPool2d",
    "adaptive_max_pool2d": "MaxPool2d",
    "avg_pool2d": "AvgPool2d",
    "adaptive_avg_pool2d": "AvgPool2d",
    "flatten": "Flatten",
    "linear": "Linear",
    "addmm": "Linear",
    "matmul": "MatMul",
    "mm": "MatMul",
    "bmm": "MatMul",
    "conv1d": "Conv1d",
    "conv3d": "Conv3d",
    "conv_transpose2d": "ConvTranspose2d",
    "hardswish": "Hardswish",
    "hardsigmoid": "Hardsigmoid",
    "silu": "SiLU",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "gelu": "GELU",
    "elu": "ELU",
    "leaky_relu": "LeakyReLU",
    "prelu": "PReLU",
    "softmax": "Softmax",
    "_softmax": "Softmax",
    "log_softmax": "LogSoftmax",
    "layer_norm": "LayerNorm",
    "group_norm": "GroupNorm",
    "add": "Add",
    "sub": "Sub",
    "rsub": "Sub",
    "mul": "Mul",
    "div": "Div",
    "cat": "Concat",
    "chunk": "Split",
    "split": "Split",
    "split_with_sizes": "Split",
    "transpose": "Transpose",
    "permute": "Transpose",
    "squeeze": "Reshape",
    "unsqueeze": "Reshape",
    "pad": "Pad",
    "constant_pad_nd": "Pad",
    "upsample_nearest2d": "Upsample",
    "upsample_bilinear2d": "Upsample",
}
#: aten operators that are bookkeeping, not computation: they neither count nor need support.
IGNORED_OPS = frozenset(
    {"dropout", "feature_dropout", "contiguous", "clone", "detach", "alias", "lift_fresh_copy",
     "_assert_tensor_metadata", "_assert_scalar", "sym_size", "getitem"}
)  # fmt: skip
#: aten operators whose output is the input's memory seen differently (no new tensor).
ALIAS_OPS = frozenset(
    {"view", "reshape", "_unsafe_view", "flatten", "squeeze", "unsqueeze", "contiguous",
     "clone", "detach", "alias", "dropout", "feature_dropout", "getitem", "lift_fresh_copy"}
)  # fmt: skip
#: ONNX operator -> term (Conv, Reshape, MatMul and Clip are decided in ``_onnx_term``).
ONNX_TERMS: dict[str, str] = {
    "BatchNormalization": "BatchNorm2d",
    "Relu": "ReLU",
    "MaxPool": "MaxPool2d",
    "GlobalMaxPool": "MaxPool2d",
    "AveragePool": "AvgPool2d",
    "GlobalAveragePool": "AvgPool2d",
    "ReduceMean": "AvgPool2d",
    "Flatten": "Flatten",
    "Gemm": "Linear",
    "HardSwish": "Hardswish",
    "HardSigmoid": "Hardsigmoid",
    "Sigmoid": "Sigmoid",
    "Tanh": "Tanh",
    "Gelu": "GELU",
    "Softmax": "Softmax",
    "Add": "Add",
    "Sub": "Sub",
    "Mul": "Mul",
    "Div": "Div",
    "Concat": "Concat",
    "Split": "Split",
    "Transpose": "Transpose",
    "Squeeze": "Reshape",
    "Unsqueeze": "Reshape",
    "Pad": "Pad",
    "Resize": "Upsample",
}
#: TFLite builtin operator -> term.
TFLITE_TERMS: dict[str, str] = {
    "CONV_2D": "Conv2d",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2d",
    "FULLY_CONNECTED": "Linear",
    "BATCH_MATMUL": "MatMul",
    "MAX_POOL_2D": "MaxPool2d",
    "AVERAGE_POOL_2D": "AvgPool2d",
    "MEAN": "AvgPool2d",
    "RELU": "ReLU",
    "RELU6": "ReLU6",
    "RESHAPE": "Flatten",
    "HARD_SWISH": "Hardswish",
    "LOGISTIC": "Sigmoid",
    "TANH": "Tanh",
    "GELU": "GELU",
    "SOFTMAX": "Softmax",
    "ADD": "Add",
    "SUB": "Sub",
    "MUL": "Mul",
    "DIV": "Div",
    "CONCATENATION": "Concat",
    "SPLIT": "Split",
    "SPLIT_V": "Split",
    "TRANSPOSE": "Transpose",
    "PAD": "Pad",
    "RESIZE_BILINEAR": "Upsample",
    "RESIZE_NEAREST_NEIGHBOR": "Upsample",
}
#: Graph operators that only convert or copy data: not layers (a quantised graph's (De)Quantize
#: steps, ONNX's Identity/Cast/Shape plumbing).
GRAPH_IGNORED = frozenset(
    {"Identity", "Cast", "Shape", "Constant", "QuantizeLinear", "DequantizeLinear",
     "DynamicQuantizeLinear", "QUANTIZE", "DEQUANTIZE"}
)  # fmt: skip


@dataclass(frozen=True)
class Layer:
    """One operator of a model as the check sees it; sizes in elements (torch) or bytes (files)."""

    index: int
    name: str
    op: str
    weights: int
    inputs: int
    outputs: int


@dataclass(frozen=True)
class ModelFacts:
    """What the check needs of a model, independent of the device.

    ``in_elements``: sizes count elements, turned into bytes per precision; otherwise they are
    bytes already (a model file, checked as it is).
    """

    model: str
    input_shape: str
    layers: list[Layer]
    params: int
    activation_peak: int
    in_elements: bool = True


# ---------------------------------------------------------------- facts of a torch model


def model_facts(ref: ModelRef) -> ModelFacts:
    if isinstance(ref, ArtifactRef):
        return file_facts(ref.path, ref.format)
    if is_unavailable(ref):
        raise UnknownModelError(str(ref.kwargs.get("reason", "this variant cannot be built")))
    return torch_facts(ref)


def torch_facts(spec: ModelSpec) -> ModelFacts:
    """Layers, params and peak activations (in elements) of the model's torch.export graph."""
    import torch

    model = spec.build()
    example = torch.zeros(spec.input_shape)
    try:
        with torch.no_grad():
            program = torch.export.export(model, (example,))
    except Exception as exc:  # export raises many types; all mean "cannot analyse"
        first = str(exc).strip().splitlines()
        raise CostError(
            f"torch.export of {spec.name} at {spec.input_shape_str} failed: {type(exc).__name__}: "
            f"{first[0][:300] if first else ''}"
        ) from exc
    return _facts_of_program(spec, program)


def _base_name(target: Any) -> str:
    name = getattr(target, "__name__", str(target))
    if hasattr(target, "_schema"):
        name = target._schema.name.split("::")[-1]
    name = name.split(".")[0]
    return name[:-1] if name.endswith("_") and not name.startswith("_") else name


def _numel(val: Any) -> int:
    if isinstance(val, (list, tuple)):
        return sum(_numel(v) for v in val)
    shape = getattr(val, "shape", None)
    return math.prod(int(d) for d in shape) if shape is not None else 0


def _rank(val: Any) -> int:
    shape = getattr(val, "shape", None)
    return len(shape) if shape is not None else -1


def _torch_term(base: str, node: Any) -> str:
    args = node.args
    if base in ("conv2d", "convolution"):
        weight = args[1].meta.get("val")
        groups = int(args[6] if base == "conv2d" and len(args) > 6 else 1)
        if base == "convolution":
            groups = int(args[8]) if len(args) > 8 else 1
            if len(args) > 6 and args[6]:
                return "ConvTranspose2d"
        c_in = int(args[0].meta["val"].shape[1])
        if groups == 1:
            return "Conv2d"
        if groups == c_in and weight is not None and int(weight.shape[1]) == 1:
            return "DepthwiseConv2d"
        return "GroupedConv2d"
    if base == "hardtanh":
        lo = float(args[1]) if len(args) > 1 else -1.0
        hi = float(args[2]) if len(args) > 2 else 1.0
        return "ReLU6" if (lo, hi) == (0.0, 6.0) else "Hardtanh"
    if base == "clamp":
        return "ReLU6" if tuple(args[1:3]) == (0, 6) else "Clamp"
    if base in ("view", "reshape", "_unsafe_view"):
        src = args[0].meta.get("val")
        out = node.meta.get("val")
        if _rank(out) == 2 and _rank(src) > 2 and src.shape[0] == out.shape[0]:
            return "Flatten"
        return "Reshape"
    if base == "mean":
        dims = args[1] if len(args) > 1 else None
        rank = _rank(args[0].meta.get("val"))
        if dims is not None and {int(d) % rank for d in dims} == {rank - 2, rank - 1}:
            return "AvgPool2d"
        return "Mean"
    return OP_TERMS.get(base, f"aten.{base}")


def _facts_of_program(spec: ModelSpec, program: Any) -> ModelFacts:
    from torch.export.graph_signature import InputKind

    kinds = {s.arg.name: s.kind for s in program.graph_signature.input_specs}
    graph = program.graph_module.graph
    weights: dict[str, int] = {}  # parameter placeholders -> elements
    inputs: list[str] = []
    for node in graph.nodes:
        if node.op != "placeholder":
            continue
        if kinds.get(node.name) == InputKind.USER_INPUT:
            inputs.append(node.name)
        elif kinds.get(node.name) == InputKind.PARAMETER:
            weights[node.name] = _numel(node.meta.get("val"))
    alias: dict[str, str] = {}

    def root(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    sizes: dict[str, int] = {
        n.name: _numel(n.meta.get("val")) for n in graph.nodes if n.name in inputs
    }
    layers: list[Layer] = []
    steps: list[Step] = []
    outputs: list[str] = []
    for node in graph.nodes:
        if node.op == "output":
            outputs = [root(a.name) for a in flat(node.args) if hasattr(a, "name")]
            continue
        if node.op != "call_function" or node.meta.get("val") is None:
            continue
        base = _base_name(node.target)
        reads = [a for a in flat(node.args) if hasattr(a, "name") and a.name not in weights]
        reads = [a for a in reads if a.op != "placeholder" or a.name in inputs]
        term = None if base in IGNORED_OPS else _torch_term(base, node)
        if base in ALIAS_OPS:
            # a view shares its input's memory: no new tensor, but (flatten, reshape) still an
            # operator the device must support
            if reads:
                alias[node.name] = root(reads[0].name)
            if term is not None:
                layers.append(Layer(len(layers), _layer_name(node, term), term, 0, 0, 0))
            continue
        if term is None:
            continue
        in_names = list(dict.fromkeys(root(a.name) for a in reads))
        sizes[node.name] = _numel(node.meta.get("val"))
        params = [a.name for a in flat(node.args) if getattr(a, "name", None) in weights]
        layers.append(
            Layer(
                index=len(layers),
                name=_layer_name(node, term),
                op=term,
                weights=sum(weights[n] for n in params),
                inputs=sum(sizes.get(n, 0) for n in in_names),
                outputs=sizes[node.name],
            )
        )
        steps.append(Step(tuple(in_names), (node.name,)))
    peak, _total = activation_liveness(steps, sizes, inputs, outputs)
    return ModelFacts(
        model=spec.name,
        input_shape=spec.input_shape_str,
        layers=layers,
        params=sum(weights.values()),
        activation_peak=peak,
    )


def _layer_name(node: Any, term: str) -> str:
    """The module path of a layer; a functional operator inside a module gets ``path:term``."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return f"{node.name}"
    path, cls = list(stack.values())[-1]
    path = path or "<model>"
    leaf = getattr(cls, "__name__", str(cls)).rsplit(".", 1)[-1]
    return path if _same_kind(leaf, term) else f"{path}:{node.name}"


def _same_kind(module_class: str, term: str) -> bool:
    if term in ("DepthwiseConv2d", "GroupedConv2d"):
        return module_class == "Conv2d"
    if term == "AvgPool2d":
        return module_class in ("AvgPool2d", "AdaptiveAvgPool2d")
    if term == "MaxPool2d":
        return module_class in ("MaxPool2d", "AdaptiveMaxPool2d")
    # timm's BatchNormAct2d and friends are the same layer with an activation folded in
    return module_class == term or module_class.startswith(term.removesuffix("2d"))


# ---------------------------------------------------------------- facts of a model file


def file_facts(path: Path, fmt: str) -> ModelFacts:
    """Facts of an exported graph, in bytes at the graph's own types (checked as it is)."""
    cost = graph_cost(path, fmt)
    terms = _onnx_terms(path) if fmt == "onnx" else {}
    layers: list[Layer] = []
    for op in cost.ops:
        if op.op_type in GRAPH_IGNORED:
            continue
        if fmt == "onnx":
            term = terms.get(op.op_index, ONNX_TERMS.get(op.op_type, op.op_type))
        else:
            term = TFLITE_TERMS.get(op.op_type, op.op_type)
        layers.append(
            Layer(len(layers), op.op_name or f"{op.op_type}_{op.op_index}", term,
                  op.weight_bytes, op.input_bytes, op.output_bytes)
        )  # fmt: skip
    return ModelFacts(
        model=path.stem,
        input_shape="",
        layers=layers,
        params=cost.weight_bytes,
        activation_peak=cost.activation_peak_bytes,
        in_elements=False,
    )


def _onnx_terms(path: Path) -> dict[int, str]:
    """Terms of the ONNX operators whose mapping depends on attributes or inputs."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {i.name: tuple(i.dims) for i in graph.initializer}
    clips = {i.name: float(numpy_helper.to_array(i)) for i in graph.initializer if not i.dims}
    terms: dict[int, str] = {}
    for index, node in enumerate(graph.node):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            groups = int(attrs.get("group", 1))
            weight = constants.get(node.input[1])
            if groups == 1:
                terms[index] = "Conv2d"
            elif weight is not None and weight[1] == 1:
                terms[index] = "DepthwiseConv2d"
            else:
                terms[index] = "GroupedConv2d"
        elif node.op_type == "MatMul":
            terms[index] = "Linear" if node.input[1] in constants else "MatMul"
        elif node.op_type == "Reshape":
            shape = constants.get(node.input[1])
            terms[index] = "Flatten" if shape == (2,) else "Reshape"
        elif node.op_type == "Clip":
            bounds = tuple(clips.get(n) for n in node.input[1:3])
            terms[index] = "ReLU6" if bounds == (0.0, 6.0) else "Clip"
    return terms
