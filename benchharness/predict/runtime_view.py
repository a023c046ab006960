"""The kernels a runtime will run, read from the runtime itself where it can say.

ONNX Runtime rewrites a graph when a session loads it (Conv + BatchNorm + activation into
``FusedConv``, the NCHWc layout with its reorder nodes, NHWC convolutions between transposes of
its own on ARM, other fusions on other CPUs) and writes the graph it will run when asked
(``SessionOptions.optimized_model_filepath``). That graph's nodes are, name for name, the rows its
profiler gives: on this project's host the zoo's and the outside models' profiles and optimized
graphs hold the same names (ghostnet_050: 266 of 266, efficientnet_b0: 236 of 236). So a model's
kernels for a prediction are found by the join that turns a measured profile into the training
kernels (``join.measured_kernels``), over the optimized graph's nodes as rows without time:
training and prediction see one kernel list, and nothing is guessed from names of other models.

The graph is the device's only when the session is made as the device makes it: the same ONNX
Runtime version on the same CPU (the NCHWc block is 8 floats with AVX2, 16 with AVX-512; ARM runs
NHWC). ``Predictor`` reads it only when its fingerprint's CPU and runtime version are this
host's; otherwise, and for LiteRT (its Python API does not show which nodes XNNPACK took or
fused), kernels are inferred from the fusion evidence measured on the device
(``predict/fusion.py``), and every prediction says which (``KERNELS_READ``,
``KERNELS_INFERRED``).
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from benchharness.cost.folding import session_graph
from benchharness.predict.join import Kernel, measured_kernels
from benchharness.predict.wiring import Graph
from benchharness.results.schema import OpRow

#: How a prediction's kernels were found (``GraphPrediction.kernels_from``).
KERNELS_READ = "read from onnxruntime's optimized graph"
KERNELS_INFERRED = "inferred from fusion evidence"
#: An optimized graph with more nodes than this is not read: the join's work stays bounded on a
#: file from outside (the zoo's largest has about 300).
MAX_VIEW_NODES = 50_000
#: Views kept in memory: an evaluation predicts each model once per held-out family.
VIEW_CACHE_SIZE = 256


@dataclass(frozen=True)
class RuntimeView:
    """The nodes a runtime runs for one artifact, as it names them, in the order it stores them."""

    runtime: str  # "onnxruntime 1.32.0"
    nodes: tuple[tuple[str, str], ...]  # (name, op_type)

    def rows(self) -> list[OpRow]:
        """The nodes as profile rows without time, for ``join.measured_kernels``; a time of 0
        (not None) lets the runtime's own nodes (reorders, transposes) be placed as measured
        ones are."""
        return [
            OpRow(op_index=i, op_name=name, op_type=op_type, median_us=0.0)
            for i, (name, op_type) in enumerate(self.nodes)
        ]


def read_kernels(graph: Graph, view: RuntimeView) -> list[Kernel]:
    """The kernels of ``graph`` as the runtime of ``view`` runs them."""
    kernels, _ = measured_kernels(graph, view.rows())
    for k in kernels:
        k.time_us, k.rows = None, 0  # a graph never run has no time
    return kernels


@functools.cache  # the host does not change under a process; predict_graphs asks once a graph
def host_cpu_model() -> str | None:
    """This host's CPU as a runs.csv row names it (the first model/hardware line of cpuinfo)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


@functools.cache
def host_ort_version() -> str | None:
    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return None


def ort_view(path: Path) -> RuntimeView | None:
    """The graph an ONNX Runtime CPU session on this host runs for the ONNX file at ``path``
    (every optimisation on, as the runner loads it); None when the session cannot load the file
    (its run would say why) or the graph is too large to read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _ort_view(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=VIEW_CACHE_SIZE)
def _ort_view(path: str, _size: int, _mtime_ns: int) -> RuntimeView | None:
    import onnxruntime as ort

    graph = session_graph(Path(path))
    if graph is None or len(graph.node) > MAX_VIEW_NODES:
        return None
    nodes = tuple((str(n.name), str(n.op_type)) for n in graph.node)
    return RuntimeView(f"onnxruntime {ort.__version__}", nodes)
