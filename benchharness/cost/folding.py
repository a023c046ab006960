"""Does an exported graph run the work its model defines?

A converter folds whatever it can prove constant: a residual branch whose last batch norm is
zero adds zero, and the TFLite converter removes the branch whole (convolutions included). The
artifact then runs a fraction of the model's MACs and times far faster than the model could;
its outputs still agree with PyTorch's, so verification cannot see it. This module compares an
artifact's graph with the model it came from:

* the **work** of each side is its MACs (convolutions and matrix products, the paper convention
  of ``cost/records.py``) and the number of convolutions and matrix products it runs: on the
  torch side every call of an operator that ``torch.utils.flop_counter`` counts, on the graph side
  every operator with MACs (``cost/``);
* a graph **lost work** when it runs under ``FOLD_MAC_RATIO`` of the model's MACs, or fewer
  convolutions and matrix products than the model calls (the graph readers count the same
  MACs and operators as torch on every zoo model in every format, so either gap is work gone);
* ONNX Runtime optimises a graph again when a session loads it; ``session_loss`` loads the file
  as a runner does (CPU provider, every optimisation on) and compares the convolutions of the
  graph it runs with the file's. Matrix products are not compared there: ONNX Runtime fuses them
  into attention kernels that stand for several.

What was lost is described in one line (``describe_loss``), which the artifact's cost keeps as
``folded`` and a row turns into the ``GRAPH_FOLDED`` flag.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx
    import torch
    from torch import nn

    from benchharness.cost.records import GraphCost

#: A graph running under this share of its model's MACs lost work; above it, the counters'
#: conventions agree exactly on the zoo, so the margin is for models they count differently.
FOLD_MAC_RATIO = 0.9
#: An operator type whose name holds this is a convolution in every ONNX domain (Conv,
#: ConvInteger, QLinearConv, FusedConv, NhwcConv, the NCHWc ``Conv``, ConvTranspose).
CONV_MARK = "conv"


@dataclass(frozen=True)
class Work:
    """What one side computes: MACs and the number of convolutions and matrix products."""

    macs: int
    ops: int


def source_ops(model: nn.Module, example: torch.Tensor) -> int:
    """How many convolutions and matrix products ``model`` calls on ``example``: the calls of
    operators torch's FLOP counter counts, the same set its MACs come from."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    calls = [0]

    def dispatch(
        mode: Any,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if getattr(func, "overloadpacket", func) in flop_registry:
            calls[0] += 1
        return func(*args, **(kwargs or {}))

    # made with type(): TorchDispatchMode is untyped, so a class statement deriving from it
    # would be an untyped call
    counting = type("ComputeOpCounter", (TorchDispatchMode,), {"__torch_dispatch__": dispatch})
    with torch.no_grad(), counting():
        model(example)
    return calls[0]


def graph_work(cost: GraphCost) -> Work:
    """The work of an exported graph: its MACs and its operators that have any."""
    return Work(macs=cost.macs, ops=sum(1 for op in cost.ops if op.macs > 0))


def describe_loss(fmt: str, graph: Work, source: Work) -> str | None:
    """One line saying what the ``fmt`` graph no longer runs; None when it runs it all."""
    if source.macs <= 0:
        return None  # a model without convolutions or matrix products has nothing to lose
    if graph.macs >= FOLD_MAC_RATIO * source.macs and graph.ops >= source.ops:
        return None
    lost_ops = max(0, source.ops - graph.ops)
    return (
        f"the {fmt} graph runs {graph.ops} of the model's {source.ops} convolutions and matrix "
        f"products ({lost_ops} removed) and {graph.macs / source.macs:.0%} of its MACs "
        f"({graph.macs / 1e6:.3g} of {source.macs / 1e6:.3g} M): the converter folded "
        "constant branches away"
    )


_SESSION_CACHE: dict[str, str | None] = {}
# devices run in threads of their own and may ask for the same artifact at once
_SESSION_LOCK = threading.Lock()


def session_loss(path: Path, sha256: str = "") -> str | None:
    """One line saying which convolutions ONNX Runtime's session optimisation removed from the
    ONNX file at ``path``; None when it keeps them all or cannot load the file (a runner will
    say so). Remembered per ``sha256``."""
    if sha256:
        with _SESSION_LOCK:
            if sha256 in _SESSION_CACHE:
                return _SESSION_CACHE[sha256]
    counted = _session_convs(path)
    loss = None
    if counted is not None and counted[1] < counted[0]:
        file_convs, session_convs = counted
        loss = (
            f"onnxruntime's session graph runs {session_convs} of the file's {file_convs} "
            "convolutions: its optimiser folded the rest away"
        )
    if sha256:
        with _SESSION_LOCK:
            _SESSION_CACHE[sha256] = loss
    return loss


def _session_convs(path: Path) -> tuple[int, int] | None:
    """(convolutions of the file, of the graph an ONNX Runtime CPU session runs)."""
    import onnx

    optimised = session_graph(path)
    if optimised is None:
        return None
    try:
        before = onnx.load(str(path), load_external_data=False)
    except Exception:  # a file a session loaded but onnx cannot read is the runner's to report
        return None
    return _convs(before.graph), _convs(optimised)


def session_graph(path: Path) -> onnx.GraphProto | None:
    """The graph an ONNX Runtime CPU session on this host runs for the ONNX file at ``path``
    (every optimisation on, as the runner loads it: ``optimized_model_filepath``); None when no
    session loads the file (a runner will say why)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="bench-session-") as tmp:
        optimised = Path(tmp) / "session.onnx"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(optimised)
        opts.log_severity_level = 3  # its warning that the NCHWc graph is machine-specific
        try:
            ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            return onnx.load(str(optimised), load_external_data=False).graph
        except Exception:  # a file a session cannot load is the runner's to report
            return None


def _convs(graph: onnx.GraphProto) -> int:
    return sum(1 for node in graph.node if CONV_MARK in node.op_type.lower())
