"""Plain data of the cost stage, the conventions shared by both graph readers, and model totals.

Conventions (docs/method.md, "FLOPs, MACs and bytes"):

* ``macs`` are multiply-accumulates of convolutions and matrix products only, in the convention of
  the papers and of torchvision's published ``_ops`` (= torch ``FlopCounterMode`` total / 2).
  Bias additions are not MACs.
* ``flops`` is element-wise work, a separate column that is never folded into ``macs``: one per
  output element for simple arithmetic, the named constants below for the rest.
* ``bytes`` is the memory traffic of one operator: the bytes of its distinct activation inputs, of
  its constant inputs (weights) and of its outputs.
* Constants (ONNX initializers and ``Constant`` nodes, TFLite tensors backed by a buffer, and
  anything computed from constants alone) are weights, never activations.

The per-element constants live here so the ONNX and the TFLite reader charge the same work the
same way; each reader maps its own operator names onto them. The torch side (``torch_macs``,
``count_params``) is :mod:`benchharness.cost.torch_cost`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

#: A tensor as a graph reader names it: by name (ONNX, the edge graph) or by index (TFLite).
K = TypeVar("K", bound=Hashable)

# --- element-wise FLOPs per output element (or per input element where said) -------------------

#: Plain arithmetic, comparisons, clamps and ReLU-like activations: one operation per element.
SIMPLE_FLOPS = 1
#: An ``exp``/``log``/``erf``/``sqrt`` counts as one operation, as fvcore and the papers count
#: intrinsics; its polynomial cost inside the runtime is a kernel detail, not model work.
TRANSCENDENTAL_FLOPS = 1
#: Sigmoid = negate, exp, add 1, divide (onnx-tool charges 32; we do not).
SIGMOID_FLOPS = 4
#: Tanh via exp(2x): multiply, exp, subtract, add, divide.
TANH_FLOPS = 5
#: HardSigmoid = multiply, add, clamp (relu6(x + 3) / 6 in the torch formulation).
HARD_SIGMOID_FLOPS = 3
#: HardSwish = HardSigmoid plus the multiply by x.
HARD_SWISH_FLOPS = 4
#: GELU (erf form) = divide by sqrt(2), erf, add 1, multiply by x, multiply by 0.5.
GELU_FLOPS = 5
#: ELU/SELU/CELU: compare, exp, subtract 1, multiply by alpha (SELU's extra scale is ignored).
ELU_FLOPS = 4
#: Softplus = exp, add 1, log; Mish adds tanh and a multiply on top.
SOFTPLUS_FLOPS = 3
#: Softmax per element: subtract the running max, exp, accumulate the sum, divide.
SOFTMAX_FLOPS = 5
#: Batch normalisation at inference is a per-channel scale and shift.
BATCHNORM_FLOPS = 2
#: Layer/instance/group norm: accumulate mean, subtract, square-accumulate, rsqrt-multiply,
#: scale, shift, plus the per-element share of the statistics.
NORMALIZATION_FLOPS = 7
#: Quantize/dequantize/cast: one scale-and-round (or conversion) per element.
CONVERT_FLOPS = 1
#: An interpolating resize (bilinear or better) is charged like bilinear: four weights,
#: four multiplies and three adds per output element; nearest neighbour is pure data movement.
RESIZE_INTERP_FLOPS = 7
#: Reductions (mean, sum, max, global pooling) do one operation per *input* element.
REDUCE_FLOPS_PER_INPUT = 1


@dataclass(frozen=True)
class OpCost:
    """Cost of one operator of an exported graph.

    ``op_index`` is the operator's index in its graph's execution order (the TFLite node index; the
    ONNX node's position in ``graph.node``), and ``op_name`` the name a profiler of that runtime
    prints for it, so measured times can be joined on either. ``output_shape`` is the shape of the
    first output. ``params`` counts the elements of weight-like constant inputs (integer shape and
    index constants and rank-0 scalars excluded). ``bytes = input_bytes + weight_bytes +
    output_bytes``, where ``weight_bytes`` covers every constant input, shape constants included.
    """

    op_index: int
    op_name: str
    op_type: str
    macs: int
    flops: int
    params: int
    bytes: int
    output_shape: tuple[int, ...]
    input_bytes: int = 0
    weight_bytes: int = 0
    output_bytes: int = 0


@dataclass(frozen=True)
class TypeCost:
    """Totals of all operators of one type (``GraphCost.by_type``)."""

    op_type: str
    count: int
    macs: int
    flops: int
    params: int
    bytes: int


@dataclass(frozen=True)
class GraphCost:
    """Per-operator costs of one exported graph plus model totals.

    * ``macs``, ``flops``: sums over ``ops``.
    * ``params``, ``weight_bytes``: over the graph's *distinct* constants, so a bias tensor shared
      by several operators (TFLite de-duplicates buffers) counts once; the per-op ``params`` count
      it in every operator that reads it, so they can sum to more than ``params``.
    * ``model_bytes``: the artifact on disk (ONNX external-data files included).
    * ``activation_peak_bytes``: the largest sum of live activation tensors at any operator in
      execution order; a tensor is live from its producer (graph inputs: from the start) to its
      last consumer (graph outputs: to the end). Weights are not activations.
    * ``activation_total_bytes``: every activation tensor once, graph inputs and outputs included.
    * ``max_layer_bytes``: the largest per-operator ``bytes`` (for NPU per-layer limits).
    * ``uncounted_op_types``: operator types this counter has no rule for; they are listed with
      0 MACs and 0 FLOPs (their bytes are still counted), so a reader knows the totals may be low.
    """

    format: str
    ops: list[OpCost]
    macs: int
    flops: int
    params: int
    model_bytes: int
    weight_bytes: int
    activation_peak_bytes: int
    activation_total_bytes: int
    max_layer_bytes: int
    uncounted_op_types: tuple[str, ...] = field(default=())

    def by_type(self) -> dict[str, TypeCost]:
        """Totals per operator type, largest MACs first (then bytes), as an ordered dict."""
        acc: dict[str, list[int]] = {}
        for op in self.ops:
            row = acc.setdefault(op.op_type, [0, 0, 0, 0, 0])
            row[0] += 1
            row[1] += op.macs
            row[2] += op.flops
            row[3] += op.params
            row[4] += op.bytes
        items = [TypeCost(t, *row) for t, row in acc.items()]
        items.sort(key=lambda c: (-c.macs, -c.bytes, c.op_type))
        return {c.op_type: c for c in items}


@dataclass(frozen=True)
class Step:
    """One operator as the liveness analysis sees it: the activation tensors it reads and writes."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def elements(shape: Sequence[int]) -> int:
    """Number of elements of a tensor of this shape (1 for a scalar)."""
    return math.prod(shape)


def activation_liveness(
    steps: Sequence[Step],
    sizes: Mapping[str, int],
    graph_inputs: Iterable[str],
    graph_outputs: Iterable[str],
) -> tuple[int, int]:
    """Return ``(peak, total)`` bytes of activation tensors over an execution order.

    ``sizes`` holds the bytes of every activation tensor; names not in it (weights, absent optional
    inputs) are ignored. During step ``i`` its inputs and outputs are all live; a tensor is freed
    after its last consumer, an output nobody reads right after its producer, and graph outputs
    never.
    """
    last_use: dict[str, int] = {}
    end = len(steps)
    for i, step in enumerate(steps):
        for name in (*step.inputs, *step.outputs):
            if name in sizes:
                last_use[name] = i
    for name in graph_outputs:
        if name in sizes:
            last_use[name] = end
    live: set[str] = set()
    current = 0
    for name in graph_inputs:
        if name in sizes and name not in live:
            live.add(name)
            current += sizes[name]
    peak = current
    for name in list(live):
        if name not in last_use:  # an input nobody reads is freed before the first step
            live.discard(name)
            current -= sizes[name]
    for i, step in enumerate(steps):
        for name in step.outputs:
            if name in sizes and name not in live:
                live.add(name)
                current += sizes[name]
        peak = max(peak, current)
        for name in {*step.inputs, *step.outputs}:
            if name in live and last_use.get(name, -1) <= i:
                live.discard(name)
                current -= sizes[name]
    total = sum(sizes.values())
    return peak, total


def flat(args: Iterable[Any]) -> list[Any]:
    """A torch.fx node's arguments with nested lists and tuples spread out, in order."""
    out: list[Any] = []
    for a in args:
        if isinstance(a, (list, tuple)):
            out.extend(flat(a))
        else:
            out.append(a)
    return out


@dataclass(frozen=True)
class Traffic(Generic[K]):
    """One operator's distinct inputs, split into activations and constants, and the bytes it
    moves: those inputs' and its outputs'."""

    activations: list[K]
    constants: list[K]
    input_bytes: int
    weight_bytes: int
    output_bytes: int


def traffic(
    inputs: Iterable[K], outputs: Iterable[K], constants: Collection[K], nbytes: Callable[[K], int]
) -> Traffic[K]:
    """The :class:`Traffic` of an operator reading ``inputs`` and writing ``outputs``."""
    distinct = list(dict.fromkeys(inputs))
    act = [n for n in distinct if n not in constants]
    const = [n for n in distinct if n in constants]
    return Traffic(
        act,
        const,
        sum(nbytes(n) for n in act),
        sum(nbytes(n) for n in const),
        sum(nbytes(n) for n in outputs),
    )


@dataclass
class Tally:
    """What a graph reader gathers walking the operators in execution order, for
    :func:`graph_totals` (the readers differ in how they read a graph, not in this)."""

    fmt: str
    graph_inputs: list[str]
    graph_outputs: list[str]
    ops: list[OpCost] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    activation_sizes: dict[str, int] = field(default_factory=dict)
    uncounted: set[str] = field(default_factory=set)

    def add(
        self,
        index: int,
        name: str,
        op_type: str,
        counted: tuple[int, int],
        *,
        params: int,
        output_shape: tuple[int, ...],
        moved: Traffic[Any],
        writes: Iterable[Any],
    ) -> None:
        """One operator: ``counted`` is its (MACs, FLOPs); it reads ``moved.activations`` and
        writes the activations ``writes``."""
        macs, flops = counted
        self.ops.append(
            OpCost(
                op_index=index,
                op_name=name,
                op_type=op_type,
                macs=macs,
                flops=flops,
                params=params,
                bytes=moved.input_bytes + moved.weight_bytes + moved.output_bytes,
                output_shape=output_shape,
                input_bytes=moved.input_bytes,
                weight_bytes=moved.weight_bytes,
                output_bytes=moved.output_bytes,
            )
        )
        self.steps.append(
            Step(tuple(str(n) for n in moved.activations), tuple(str(n) for n in writes))
        )

    def totals(self, *, params: int, weight_bytes: int, model_bytes: int) -> GraphCost:
        """The graph's cost: ``params`` and ``weight_bytes`` over its distinct constants,
        ``model_bytes`` the artifact on disk."""
        peak, total = activation_liveness(
            self.steps, self.activation_sizes, self.graph_inputs, self.graph_outputs
        )
        return GraphCost(
            format=self.fmt,
            ops=self.ops,
            macs=sum(op.macs for op in self.ops),
            flops=sum(op.flops for op in self.ops),
            params=params,
            model_bytes=model_bytes,
            weight_bytes=weight_bytes,
            activation_peak_bytes=peak,
            activation_total_bytes=total,
            max_layer_bytes=max((op.bytes for op in self.ops), default=0),
            uncounted_op_types=tuple(sorted(self.uncounted)),
        )
