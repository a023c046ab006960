"""Per-operator MACs, element-wise FLOPs, params and bytes of an ExecuTorch program.

A ``.pte`` keeps its XNNPACK partitions as opaque blobs, so the operators are counted on the
program's edge-dialect graph *before* partitioning, which the ETRecord beside the artifact holds
(``export/pte.py``). Every node there carries the ``debug_handle`` that ETDump events name, so the
same operator list serves the per-operator join (``parse/etdump.py``).

The operators are the graph's ``call_function`` nodes in execution order, except ``getitem`` (it
names one output of a multi-output node) and the dequantisation of a constant weight (XNNPACK
reads the int8 weight itself; its bytes are charged to the consumer at int8 size). The rules are
those of ``cost/records.py``: MACs for convolutions and matrix products only, element-wise work in
``flops``, bytes = distinct activation inputs + constant inputs + outputs. ExecuTorch is imported
only to read the ETRecord.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchharness.cost import records as cm
from benchharness.cost.records import GraphCost
from benchharness.errors import CostError

#: The method whose graph is counted when an ETRecord holds several: the one the runner runs.
DEFAULT_METHOD = "forward"
#: Namespaces of edge operators that the op type keeps (``aten.convolution``).
GETITEM = "getitem"
#: Dequantisations that, on a constant, are the weight itself rather than an executed operator.
WEIGHT_DEQUANTIZE = frozenset(
    {"quantized_decomposed.dequantize_per_channel", "quantized_decomposed.dequantize_per_tensor"}
)

_SIMPLE = [
    "relu", "hardtanh", "clamp", "leaky_relu", "prelu", "add", "sub", "rsub", "mul", "div",
    "maximum", "minimum", "neg", "abs", "reciprocal", "pow", "floor", "ceil", "round", "sign",
    "eq", "ne", "lt", "le", "gt", "ge", "where", "remainder", "fmod", "cumsum", "logical_and",
    "logical_or", "logical_not", "bitwise_and", "bitwise_or", "bitwise_not", "masked_fill",
]  # fmt: skip
_TRANSCENDENTAL = ["exp", "log", "sqrt", "rsqrt", "erf", "sin", "cos", "tan", "atan"]
_CONVERT = [
    "quantized_decomposed.quantize_per_tensor", "quantized_decomposed.dequantize_per_tensor",
    "quantized_decomposed.quantize_per_channel", "quantized_decomposed.dequantize_per_channel",
    "quantized_decomposed.choose_qparams", "_to_copy",
]  # fmt: skip

#: FLOPs per output element, by op type (``aten.`` dropped; other namespaces kept).
FLOPS_PER_OUTPUT: dict[str, int] = {
    **dict.fromkeys(_SIMPLE, cm.SIMPLE_FLOPS),
    **dict.fromkeys(_TRANSCENDENTAL, cm.TRANSCENDENTAL_FLOPS),
    **dict.fromkeys(_CONVERT, cm.CONVERT_FLOPS),
    "sigmoid": cm.SIGMOID_FLOPS,
    "tanh": cm.TANH_FLOPS,
    "hardsigmoid": cm.HARD_SIGMOID_FLOPS,
    "hardswish": cm.HARD_SWISH_FLOPS,
    "silu": cm.SIGMOID_FLOPS + cm.SIMPLE_FLOPS,
    "gelu": cm.GELU_FLOPS,
    "elu": cm.ELU_FLOPS,
    "softplus": cm.SOFTPLUS_FLOPS,
    "mish": cm.SOFTPLUS_FLOPS + cm.TANH_FLOPS + cm.SIMPLE_FLOPS,
    "_softmax": cm.SOFTMAX_FLOPS,
    "_log_softmax": cm.SOFTMAX_FLOPS,
    "_native_batch_norm_legit_no_training": cm.BATCHNORM_FLOPS,
    "native_layer_norm": cm.NORMALIZATION_FLOPS,
    "native_group_norm": cm.NORMALIZATION_FLOPS,
}
#: Reductions: FLOPs per *input* element (adaptive average pooling reads each input once).
FLOPS_PER_INPUT: dict[str, int] = dict.fromkeys(
    ["mean", "sum", "amax", "amin", "max", "min", "argmax", "argmin", "_adaptive_avg_pool2d",
     "adaptive_avg_pool2d"],
    cm.REDUCE_FLOPS_PER_INPUT,
)  # fmt: skip
#: Pooling with a window (kernel size is the second argument): output elements * window area.
WINDOW_POOL_OPS = frozenset({"avg_pool2d", "max_pool2d", "max_pool2d_with_indices"})
#: Interpolating resizes; the nearest-neighbour ones are data movement.
INTERPOLATING_RESIZE = frozenset({"upsample_bilinear2d", "upsample_bicubic2d"})
#: Pure data movement: no arithmetic, but their bytes are counted.
DATA_MOVEMENT_OPS = frozenset(
    ["view_copy", "permute_copy", "expand_copy", "cat", "split_with_sizes_copy", "split_copy",
     "slice_copy", "select_copy", "squeeze_copy", "unsqueeze_copy", "clone", "_unsafe_view",
     "constant_pad_nd", "pixel_shuffle", "pixel_unshuffle", "alias_copy", "transpose_copy",
     "t_copy", "flip", "index_select", "_to_dim_order_copy", "full", "full_like", "zeros",
     "ones", "upsample_nearest2d", "unbind_copy", "stack", "repeat", "roll", "channel_shuffle",
     "dim_order_ops._to_dim_order_copy", "dim_order_ops._clone_dim_order"],
)  # fmt: skip
#: Matrix products: op type -> position of the ``A`` operand (its last dimension is K).
MATMUL_A_ARG = {"mm": 0, "bmm": 0, "matmul": 0, "addmm": 1, "baddbmm": 1}


@dataclass(frozen=True)
class EdgeOp:
    """One operator of the edge graph: its place in execution order and what ETDump calls it."""

    index: int
    name: str
    op_type: str
    debug_handle: int | None
    node: Any


def op_type_of(node: Any) -> str:
    """``aten.convolution`` for ``aten.convolution.default``: namespace and name, no overload."""
    target = node.target
    name = getattr(target, "__name__", None) or str(target)
    parts = str(name).split(".")
    if len(parts) >= 3:
        parts = parts[:2]
    return ".".join(parts)


def _rule_name(op_type: str) -> str:
    return op_type.removeprefix("aten.")


def load_etrecord(path: Path) -> Any:
    """The ETRecord at ``path`` (CostError when ExecuTorch or the file is missing)."""
    if not path.is_file():
        raise CostError(
            f"no ETRecord at {path}: the program's operators are counted on it; re-export with "
            "`bench export --formats pte`"
        )
    try:
        from executorch.devtools.etrecord import parse_etrecord
    except ImportError as exc:
        raise CostError(f"ExecuTorch is not installed ({exc}); run the README's setup") from exc
    try:
        return parse_etrecord(str(path))
    except Exception as exc:  # a damaged zip or a record of another ExecuTorch version
        raise CostError(f"cannot read the ETRecord {path}: {type(exc).__name__}: {exc}") from exc


def edge_program(etrecord: Any) -> Any:
    """The edge-dialect program of the method the runner runs."""
    program = etrecord.edge_dialect_program
    if isinstance(program, dict):
        program = program.get(DEFAULT_METHOD) or next(iter(program.values()), None)
    if program is None:
        raise CostError("the ETRecord holds no edge-dialect program")
    return program


def _constants(program: Any) -> set[str]:
    sig = program.graph_signature
    names: set[str] = set()
    for table in ("inputs_to_parameters", "inputs_to_buffers", "inputs_to_lifted_tensor_constants"):
        names.update(getattr(sig, table, {}) or {})
    return names


def _is_weight_dequantize(node: Any, constants: set[str]) -> bool:
    return op_type_of(node) in WEIGHT_DEQUANTIZE and all(
        n.name in constants for n in node.all_input_nodes
    )


def edge_ops(program: Any) -> list[EdgeOp]:
    """The graph's operators in execution order (see the module docstring for what is left out)."""
    constants = _constants(program)
    ops: list[EdgeOp] = []
    for node in program.graph.nodes:
        if node.op != "call_function" or getattr(node.target, "__name__", "") == GETITEM:
            continue
        if _is_weight_dequantize(node, constants):
            constants.add(node.name)
            continue
        handle = node.meta.get("debug_handle")
        handle = handle if isinstance(handle, int) else None
        ops.append(EdgeOp(len(ops), node.name, op_type_of(node), handle, node))
    return ops


def _shape(value: Any, where: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in value.shape)
    except (TypeError, ValueError, AttributeError) as exc:
        raise CostError(f"the shape of {where} is unknown or symbolic: {exc}") from exc


def _nbytes(value: Any, where: str) -> int:
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        return 0
    return math.prod(_shape(value, where)) * int(value.dtype.itemsize)


class _Tensors:
    """Bytes and shapes of the graph's tensors, each one named after the node that produces it."""

    def __init__(self, program: Any, constants: set[str]) -> None:
        self.constants = constants
        self.sources = set(constants)  # stored constants, as opposed to computed from them
        self.values: dict[str, Any] = {}
        self.weight_of: dict[str, str] = {}  # dequantised weight -> the int8 constant it reads
        for node in program.graph.nodes:
            self.values[node.name] = node.meta.get("val")

    def nbytes(self, name: str) -> int:
        return _nbytes(self.values.get(self.weight_of.get(name, name)), name)

    def shape(self, name: str) -> tuple[int, ...]:
        return _shape(self.values.get(name), name)

    def is_weight_like(self, name: str) -> bool:
        """A constant that counts as parameters: rank > 0 and not integer shape data."""
        value = self.values.get(self.weight_of.get(name, name))
        if value is None or not hasattr(value, "dtype") or not _shape(value, name):
            return False
        return bool(value.dtype.is_floating_point) or value.dtype.itemsize == 1


def _outputs(node: Any) -> list[str]:
    """Tensors a node produces: itself, or the ``getitem`` users that pick its outputs."""
    if isinstance(node.meta.get("val"), (tuple, list)):
        return [u.name for u in node.users if getattr(u.target, "__name__", "") == GETITEM]
    return [node.name]


def _compute(op: EdgeOp, tensors: _Tensors, out_elts: int) -> tuple[int, int, bool]:
    """``(macs, flops, known)`` of one operator."""
    rule = _rule_name(op.op_type)
    args = op.node.args
    if rule == "convolution":
        weight = tensors.shape(args[1].name)
        transposed = bool(args[6]) if len(args) > 6 else False
        if transposed:
            # weight is (C_in, C_out / groups, k...): each input element scatters into that many
            return math.prod(tensors.shape(args[0].name)) * math.prod(weight[1:]), 0, True
        # weight is (C_out, C_in / groups, k...): each output element needs that many MACs
        return out_elts * math.prod(weight[1:]), 0, True
    if rule == "linear":
        return out_elts * tensors.shape(args[1].name)[-1], 0, True
    if rule in MATMUL_A_ARG:
        return out_elts * tensors.shape(args[MATMUL_A_ARG[rule]].name)[-1], 0, True
    if rule in FLOPS_PER_OUTPUT:
        return 0, out_elts * FLOPS_PER_OUTPUT[rule], True
    if rule in FLOPS_PER_INPUT:
        return 0, math.prod(tensors.shape(args[0].name)) * FLOPS_PER_INPUT[rule], True
    if rule in WINDOW_POOL_OPS:
        kernel = [int(k) for k in args[1]]
        return 0, out_elts * math.prod(kernel), True
    if rule in INTERPOLATING_RESIZE:
        return 0, out_elts * cm.RESIZE_INTERP_FLOPS, True
    if rule in DATA_MOVEMENT_OPS:
        return 0, 0, True
    return 0, 0, False


def edge_program_cost(program: Any, model_bytes: int) -> GraphCost:
    """Count MACs, FLOPs, params and bytes of every operator of an edge-dialect program."""
    constants = _constants(program)
    tensors = _Tensors(program, constants)
    sig = program.graph_signature
    graph_inputs = [n for n in sig.user_inputs if n not in constants]
    output_node = next(n for n in program.graph.nodes if n.op == "output")
    graph_outputs = [a.name for a in cm.flat(output_node.args) if hasattr(a, "name")]

    tally = cm.Tally("pte", graph_inputs, graph_outputs)
    tally.activation_sizes.update({name: tensors.nbytes(name) for name in graph_inputs})
    param_sources: set[str] = set()
    for node in program.graph.nodes:
        if node.op != "call_function" or getattr(node.target, "__name__", "") == GETITEM:
            continue
        if _is_weight_dequantize(node, tensors.constants):
            tensors.constants.add(node.name)
            tensors.weight_of[node.name] = node.all_input_nodes[0].name
    for op in edge_ops(program):
        node = op.node
        inputs = [n.name for n in node.all_input_nodes]
        outputs = _outputs(node)
        if inputs and all(n in tensors.constants for n in inputs):
            tensors.constants.update(outputs)
        moved = cm.traffic(inputs, outputs, tensors.constants, tensors.nbytes)
        params = 0
        for n in moved.constants:
            if tensors.is_weight_like(n):
                source = tensors.weight_of.get(n, n)
                params += math.prod(tensors.shape(source))
                if source in tensors.sources:
                    param_sources.add(source)
        out_shape = tensors.shape(outputs[0]) if outputs else ()
        macs, flops, known = _compute(op, tensors, math.prod(out_shape) if outputs else 0)
        if not known:
            tally.uncounted.add(op.op_type)
        for n in outputs:
            if n not in tensors.constants:
                tally.activation_sizes[n] = tensors.nbytes(n)
        writes = [o for o in outputs if o not in tensors.constants]
        tally.add(
            op.index,
            op.name,
            op.op_type,
            (macs, flops),
            params=params,
            output_shape=out_shape,
            moved=moved,
            writes=writes,
        )
    return tally.totals(
        params=sum(math.prod(tensors.shape(n)) for n in param_sources),
        weight_bytes=sum(tensors.nbytes(n) for n in tensors.sources),
        model_bytes=model_bytes,
    )


def pte_cost(path: Path) -> GraphCost:
    """Per-operator cost of the program at ``path``, counted on the ETRecord beside it."""
    from benchharness.export.pte import etrecord_path

    path = Path(path)
    if not path.is_file():
        raise CostError(f"ExecuTorch program {path} does not exist; export it first")
    program = edge_program(load_etrecord(etrecord_path(path)))
    try:
        return edge_program_cost(program, path.stat().st_size)
    except CostError:
        raise
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        raise CostError(
            f"cannot count the operators of {path}: {type(exc).__name__}: {exc}"
        ) from exc
