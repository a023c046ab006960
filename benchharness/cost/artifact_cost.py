"""The one entry point to an exported graph's per-operator cost, computed once per artifact.

Export, per-operator rows and ``bench check`` all ask for the cost of the same files, some once
per job; reading a large ONNX or TFLite graph takes seconds, so the answer is kept per sha256
(the artifact's identity: a re-exported file with other bytes is a new entry).
"""

from __future__ import annotations

import threading
from pathlib import Path

from benchharness.cost.records import GraphCost
from benchharness.errors import CostError

#: Formats with a graph reader; the torch format's .pt2 has none (its cost comes from torch).
#: A .pte is read through the ETRecord beside it (``cost/pte_cost.py``).
GRAPH_FORMATS = ("onnx", "tflite", "pte")

_CACHE: dict[tuple[str, str], GraphCost | None] = {}
# devices run in threads of their own and may ask for the same artifact at once
_LOCK = threading.Lock()


def graph_cost(path: Path, fmt: str, sha256: str = "") -> GraphCost:
    """Per-operator cost of ``path``; raises CostError when the graph cannot be read."""
    if fmt not in GRAPH_FORMATS:
        raise CostError(f"no graph reader for the {fmt} format")
    key = (sha256 or str(Path(path).resolve()), fmt)
    with _LOCK:
        if key in _CACHE:
            cached = _CACHE[key]
            if cached is None:
                raise CostError(f"the cost of {path} could not be computed before")
            return cached
    try:
        if fmt == "onnx":
            from benchharness.cost.onnx_cost import onnx_cost

            cost = onnx_cost(path)
        elif fmt == "pte":
            from benchharness.cost.pte_cost import pte_cost

            cost = pte_cost(path)
        else:
            from benchharness.cost.tflite_cost import tflite_cost

            cost = tflite_cost(path)
    except CostError:
        if sha256:
            with _LOCK:
                _CACHE[key] = None
        raise
    if sha256:  # a path alone may be rewritten in place: only hashed artifacts are remembered
        with _LOCK:
            _CACHE[key] = cost
    return cost


def graph_cost_or_none(path: Path, fmt: str, sha256: str = "") -> GraphCost | None:
    """``graph_cost``, or None for a format without a reader or a graph that cannot be read."""
    try:
        return graph_cost(path, fmt, sha256)
    except CostError:
        return None
