"""Kernel detection on measured models: a profile's rows grouped into the graph operators they ran.

A runtime does not run the exported graph node for node. ONNX Runtime fuses a convolution with the
activation, add or both that follow it (``FusedConv``, or its NCHWc convolution with a ``Sum``
input), renames NCHWc nodes after their output tensor (``relu_4_nchwc``), turns two slices into
one ``Split``, and adds nodes of its own (``ReorderInput``/``ReorderOutput`` around the blocked
layout, ``HardSigmoid`` + ``Mul`` for a HardSwish it does not fuse, ``QuickGelu`` for x*sigmoid(x)).
On ARM it runs convolutions in NHWC instead (``NhwcFusedConv`` named ``<node>_token_<k>``, between
two ``Transpose``s of its own). LiteRT hands most nodes to XNNPACK, which folds a ``PAD`` into the
convolution after it.

``ops.csv`` keeps each row's runtime name and time. This module matches rows to graph nodes by
name, not by the position-and-type guess ``parse/op_join`` falls back to (which can give an NCHWc
convolution the cost of another convolution), and builds **kernels**: each a head node, the nodes
the runtime ran inside it, and the time of its rows.

* ORT: a row is anchored at the node of its name, or, for ``<tensor>_nchwc``, at the producer of
  that tensor (then walked back to the node of the row's own type, so ``relu_4_nchwc`` is the
  convolution and its ReLU); ``a/b`` names (fusions of ORT) anchor at ``a``. LiteRT: a row is
  anchored at its ``graph_ops`` node indices (the row's own node first).
* A row anchored nowhere is runtime-made: a reorder is charged to the kernel of the next
  anchored row (the one that needed the layout), anything else to the previous one (it is the rest
  of a node ORT decomposed).
* A graph node no row names was run inside a neighbour: it joins the kernel of its producer when
  it is that kernel's last node's only consumer, else the kernel of its only consumer when it is
  that consumer's only input, else it vanished (a reshape done in place, a node folded away).

Every such decision is counted (``Evidence``), so the same rules applied to a graph that was never
run (``predict/fusion.py``) reproduce what the runtime does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchharness.parse import ort_profile
from benchharness.predict.wiring import Graph, Node
from benchharness.results.schema import OpRow

#: Suffix ORT's NCHWc transformer gives a node, after the tensor the node writes.
NCHWC_SUFFIX = "_nchwc"
#: Runtime-made rows charged to the row after them: a layout change is paid for the kernel that
#: needs it (a blocked-layout convolution, or the plain-layout op after one), not the one before:
#: x86's NCHWc reorders, and the transposes around ARM's NHWC convolutions (a graph's own
#: Transpose is anchored by its name and never loose).
FORWARD_ROW_TYPES = frozenset({"ReorderInput", "ReorderOutput", "Transpose"})
#: How far back from an anchor a fused kernel's head may lie (conv -> add -> relu).
MAX_FUSED_DEPTH = 3
#: A TFLite graph index in a ``graph_ops`` name: ``[tensor, ...]:17``.
TFLITE_INDEX_RE = re.compile(r"\]:(\d+)(?=,|$)")
#: Node types a kernel may carry besides its head and still be a clean sample: what runtimes fuse
#: into a compute kernel. A kernel holding two compute nodes is an alignment error, not a sample.
ABSORBABLE = frozenset(
    {
        "Relu",
        "Clip",
        "HardSwish",
        "HardSigmoid",
        "Sigmoid",
        "Mul",
        "Add",
        "Sum",
        "Sub",
        "LeakyRelu",
        "Tanh",
        "Pad",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
        "Flatten",
        "Identity",
        "Slice",
        "Split",
        "PAD",
        "PADV2",
        "RESHAPE",
        "SQUEEZE",
        "EXPAND_DIMS",
        "HARD_SWISH",
        "LOGISTIC",
        "MUL",
        "ADD",
        "RELU",
        "RELU6",
        "DEQUANTIZE",
    }
)


@dataclass
class Kernel:
    """Graph nodes the runtime ran as one kernel; ``time_us`` is None on a graph never run."""

    head: Node
    nodes: list[Node]
    time_us: float | None = None
    rows: int = 0
    clean: bool = True

    @property
    def tail(self) -> Node:
        return max(self.nodes, key=lambda n: n.index)

    def member_types(self) -> list[str]:
        return sorted(n.type for n in self.nodes if n is not self.head)


@dataclass
class Evidence:
    """Counts of what the runtime did with graph nodes next to each other (the fusion rules).

    ``down[(head type, node type, situation)]`` = [joined, chances]: a node whose inputs come from
    a kernel (``join.down_candidate``) ran inside it; ``up[(node type, consumer type)]`` likewise
    for a node whose only consumer reads nothing else; ``alone[type]`` = [vanished, kept] for the
    nodes that joined nothing (vanished: no time of its own and nothing to run inside).
    """

    down: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    up: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    alone: dict[str, list[int]] = field(default_factory=dict)

    def add(self, other: Evidence) -> None:
        for mine, theirs in (
            (self.down, other.down),
            (self.up, other.up),
            (self.alone, other.alone),
        ):
            for k, (a, b) in theirs.items():
                row = mine.setdefault(k, [0, 0])  # type: ignore[arg-type]
                row[0] += a
                row[1] += b

    def to_json(self) -> dict[str, Any]:
        return {
            "down": [[h, t, s, j, n] for (h, t, s), (j, n) in sorted(self.down.items())],
            "up": [[t, c, j, n] for (t, c), (j, n) in sorted(self.up.items())],
            "alone": [[t, v, a] for t, (v, a) in sorted(self.alone.items())],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evidence:
        return cls(
            down={
                (str(h), str(t), str(s)): [int(j), int(n)] for h, t, s, j, n in data.get("down", [])
            },
            up={(str(t), str(c)): [int(j), int(n)] for t, c, j, n in data.get("up", [])},
            alone={str(t): [int(v), int(a)] for t, v, a in data.get("alone", [])},
        )


def sole_consumer(graph: Graph, node: Node) -> Node | None:
    found = graph.consumers_of(node)
    return found[0] if len(found) == 1 else None


def last_before(kernel: Kernel, index: int) -> Node | None:
    """The kernel's last node before graph position ``index`` (its tail while it was built)."""
    earlier = [n for n in kernel.nodes if n.index < index]
    return max(earlier, key=lambda n: n.index) if earlier else None


def down_candidate(
    graph: Graph, node: Node, owner: Mapping[int, Kernel]
) -> tuple[Kernel, str] | None:
    """The kernel ``node`` could run inside as a follower, and which situation it is.

    ``tail``: the node is the only consumer of a kernel's last node (conv -> relu; the conv's
    output of a residual add). ``shared``: every input comes from one kernel whose other readers
    read this node too (the sigmoid of x * sigmoid(x) after a conv).
    """
    producers = graph.producers_of(node)
    if not producers or any(p.index not in owner for p in producers):
        return None
    main = [
        p
        for p in producers
        if sole_consumer(graph, p) is node and last_before(owner[p.index], node.index) is p
    ]
    if main:
        p = max(main, key=lambda m: sum(n.cost.macs for n in owner[m.index].nodes))
        return owner[p.index], "tail"
    kernels = {id(owner[p.index]) for p in producers}
    if len(kernels) == 1 and all(_closes_on(graph, p, node) for p in producers):
        return owner[producers[0].index], "shared"
    return None


def _closes_on(graph: Graph, producer: Node, node: Node) -> bool:
    """Whether every other reader of ``producer`` also reads ``node`` (x * f(x) diamonds)."""
    later = {c.index for c in graph.consumers_of(node)}
    return all(c is node or c.index in later for c in graph.consumers_of(producer))


def up_candidate(graph: Graph, node: Node) -> Node | None:
    """The consumer ``node`` could run inside as a leader (a PAD before its convolution)."""
    consumer = sole_consumer(graph, node)
    if consumer is None or len(consumer.inputs) != 1:
        return None
    return consumer


def _ort_anchor(graph: Graph, name: str, row_type: str) -> list[Node]:
    """The graph nodes an ORT row ran, head first; [] for a runtime-made node."""
    name = ort_profile.graph_name(name)  # "fused node_linear", "node_Conv_3_token_1"
    node = graph.by_name.get(name)
    if node is None and "/" in name:
        node = graph.by_name.get(name.split("/", 1)[0])
    if node is None and name.endswith(NCHWC_SUFFIX):
        idx = graph.producer.get(name.removesuffix(NCHWC_SUFFIX))
        node = graph.by_index.get(idx) if idx is not None else None
    if node is None:
        return []
    want = ort_profile.graph_type(row_type)
    path = [node]
    cur = node
    for _ in range(MAX_FUSED_DEPTH):
        if cur.type == want:
            break
        producers = graph.producers_of(cur)
        if not producers:
            break
        # the fused kernel's main input: a conv's output feeds the add, the add the relu
        cur = max(producers, key=lambda p: p.cost.macs)
        path.append(cur)
    if cur.type != want:
        return [node]
    return [cur, *reversed(path[:-1])]


def _tflite_anchor(graph: Graph, graph_ops: str | None) -> list[Node]:
    if not graph_ops:
        return []
    return [
        graph.by_index[int(i)]
        for i in TFLITE_INDEX_RE.findall(graph_ops)
        if int(i) in graph.by_index
    ]


def _anchor(graph: Graph, row: OpRow) -> list[Node]:
    if graph.format == "onnx":
        return _ort_anchor(graph, row.op_name, row.op_type)
    if row.median_us is None:
        return []  # a graph node the runtime gave no time of its own: placed with the others
    return _tflite_anchor(graph, row.graph_ops)


def measured_kernels(graph: Graph, rows: Sequence[OpRow]) -> tuple[list[Kernel], Evidence]:
    """The kernels of one measured artifact (rows of one ops.csv job, in profile order)."""
    kernels: list[Kernel] = []
    owner: dict[int, Kernel] = {}
    # phase 1: rows named after graph nodes become kernels; the rest wait for their neighbours
    sequence: list[Kernel | None] = []
    loose: list[tuple[int, float, str]] = []
    for row in rows:
        t = row.median_us
        nodes = [n for n in _anchor(graph, row) if n.index not in owner]
        if not nodes:
            sequence.append(None)
            if t is not None:
                loose.append((len(sequence) - 1, t, row.op_type))
            continue
        k = Kernel(head=nodes[0], nodes=list(nodes), time_us=t or 0.0, rows=1)
        k.clean = all(n.type in ABSORBABLE for n in nodes[1:])
        kernels.append(k)
        sequence.append(k)
        for n in nodes:
            owner[n.index] = k
    anchored = set(owner)
    # phase 2: graph nodes no row named ran inside a neighbour (or vanished)
    _place(graph, kernels, owner)
    # phase 3: runtime-made rows go to the neighbour that holds what they implement
    for pos, time, row_type in loose:
        before = next((k for k in reversed(sequence[:pos]) if k is not None), None)
        after = next((k for k in sequence[pos + 1 :] if k is not None), None)
        target = _loose_target(before, after, row_type, anchored)
        if target is None:
            continue
        target.time_us = (target.time_us or 0.0) + time
        target.rows += 1
        if graph.format == "tflite":
            target.clean = False  # LiteRT's unaligned rows may belong anywhere
    kernels.sort(key=lambda k: k.head.index)
    return kernels, evidence_of(graph, owner)


def _loose_target(
    before: Kernel | None, after: Kernel | None, row_type: str, anchored: set[int]
) -> Kernel | None:
    def holds_unnamed(k: Kernel | None) -> bool:
        return k is not None and any(n.index not in anchored for n in k.nodes)

    if row_type in FORWARD_ROW_TYPES:
        return after or before
    if holds_unnamed(before):
        return before
    if holds_unnamed(after):
        return after
    return before or after


def _place(graph: Graph, kernels: list[Kernel], owner: dict[int, Kernel]) -> None:
    """Followers join the kernel before them, leaders the one after, the rest vanish."""
    for n in graph.nodes:
        if n.index in owner:
            continue
        found = down_candidate(graph, n, owner)
        if found is not None:
            _join(found[0], n, owner)
    for n in reversed(graph.nodes):
        if n.index in owner:
            continue
        consumer = up_candidate(graph, n)
        if consumer is not None and consumer.index in owner:
            k = owner[consumer.index]
            if k.head is consumer:
                _join(k, n, owner)
                continue
        vanished = Kernel(head=n, nodes=[n], time_us=0.0, rows=0)
        kernels.append(vanished)
        owner[n.index] = vanished


def _join(k: Kernel, n: Node, owner: dict[int, Kernel]) -> None:
    k.nodes.append(n)
    k.nodes.sort(key=lambda m: m.index)
    owner[n.index] = k


def evidence_of(graph: Graph, owner: Mapping[int, Kernel]) -> Evidence:
    """Each chance a node had to run inside a neighbour, and whether it did (the rules' counts)."""
    ev = Evidence()
    for n in graph.nodes:
        k = owner.get(n.index)
        if k is None:
            continue
        found = down_candidate(graph, n, owner)
        if found is not None and not (found[0] is k and k.head is n):
            # (a head whose leader joined it reads from its own kernel: no chance to follow)
            row = ev.down.setdefault((found[0].head.type, n.type, found[1]), [0, 0])
            row[1] += 1
            if found[0] is k:
                row[0] += 1
                continue
        consumer = up_candidate(graph, n)
        # a leader the profile placed in a kernel neither its own nor its reader's (LiteRT puts
        # a row-less PAD in the next convolution in node order) says nothing either way
        if (
            consumer is not None
            and consumer.index in owner
            and (owner[consumer.index] is k or k.head is n)
        ):
            row = ev.up.setdefault((n.type, consumer.type), [0, 0])
            row[1] += 1
            if owner[consumer.index] is k and k.head is consumer:
                row[0] += 1
                continue
        if k.head is n:
            row = ev.alone.setdefault(n.type, [0, 0])
            row[0 if k.rows == 0 and len(k.nodes) == 1 else 1] += 1
    return ev


def total_time_us(kernels: Iterable[Kernel]) -> float:
    return sum(k.time_us or 0.0 for k in kernels)
