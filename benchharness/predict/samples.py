"""From a build's run folders to training data: kernel samples, fusion evidence, calibration.

Every ``ok`` row of a kernel run is one artifact measured end to end (``runs.csv``) and operator
by operator (``ops.csv``). Its operators are grouped into kernels (``join.measured_kernels``), and
each clean kernel with time of its own becomes a sample. The artifact's end-to-end median next to
the sum of its kernels' times is one **calibration point**: profiled operator times are not the
unprofiled end-to-end time (ORT's profiler adds microseconds to every node it records, and each
run pays a fixed cost outside every operator), and the calibration learns that difference from
the kernel models alone.

A kernel model whose row says its measurement does not hold (``UNRELIABLE_FLAGS``) gives nothing
(unless its format has too few others): its kernels would teach the regressors, the calibration
and the interval's widths a machine that was busy, not the device.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchharness.cost.artifact_cost import GRAPH_FORMATS
from benchharness.errors import CostError
from benchharness.export.cache import sha256_file
from benchharness.predict.features import kernel_features, kernel_key, owner_map
from benchharness.predict.fusion import model_time_us
from benchharness.predict.join import Evidence, measured_kernels
from benchharness.predict.regress import Sample
from benchharness.predict.wiring import Graph, read_graph
from benchharness.results.schema import OpRow, RunRow
from benchharness.results.store import RunStore

#: Row flags under which a kernel model is not training data: ``OPS_SUM_OFF``, its operators
#: were timed at another speed than its end-to-end median (after the runner's retries), so its
#: kernel times and calibration point disagree; ``DRIFT``, its latency moved during the run.
UNRELIABLE_FLAGS = frozenset({"OPS_SUM_OFF", "DRIFT"})
#: Below this many steady kernel models in a format, its flagged ones are kept (and said so): a
#: predictor from noisy measurements is still better than none (a full build has about 60).
MIN_STEADY_MODELS = 16


@dataclass(frozen=True)
class Point:
    """One measured model: summed kernel times, profile rows, end-to-end time, size, origin."""

    format: str
    model: str
    origin: str
    sum_us: float
    rows: int
    e2e_us: float
    macs: int
    bytes: int

    def to_json(self) -> list[Any]:
        return [
            self.format,
            self.model,
            self.origin,
            self.sum_us,
            self.rows,
            self.e2e_us,
            self.macs,
            self.bytes,
        ]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> Point:
        fmt, model, origin, s, rows, e2e, macs, nbytes = data
        return cls(
            str(fmt),
            str(model),
            str(origin),
            float(s),
            int(rows),
            float(e2e),
            int(macs),
            int(nbytes),
        )


@dataclass
class Measured:
    """Everything a build's runs taught: samples, evidence per format, points, pair times."""

    samples: list[Sample] = field(default_factory=list)
    evidence: dict[str, Evidence] = field(default_factory=dict)
    points: list[Point] = field(default_factory=list)
    pair_times: dict[tuple[str, str], float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(self, one: tuple[list[Sample], Evidence, Point]) -> None:
        samples, evidence, point = one
        self.samples.extend(samples)
        self.evidence.setdefault(point.format, Evidence()).add(evidence)
        self.points.append(point)


def measure_artifact(
    graph: Graph,
    rows: Sequence[OpRow],
    origin: str,
    model: str,
    e2e_us: float,
    macs: int | None = None,
) -> tuple[list[Sample], Evidence, Point]:
    """The samples, fusion evidence and calibration point of one measured artifact."""
    fmt = graph.format
    kernels, evidence = measured_kernels(graph, rows)
    owner = owner_map(kernels)
    samples = [
        Sample(
            fmt,
            kernel_key(k, fmt),
            kernel_features(k, graph, owner),
            k.time_us,
            origin,
            model,
            k.rows,
        )
        for k in kernels
        if k.rows > 0 and k.clean and k.time_us is not None
    ]
    point = Point(
        fmt,
        model,
        origin,
        sum(k.time_us or 0.0 for k in kernels),
        sum(k.rows for k in kernels),
        e2e_us,
        macs if macs is not None else sum(n.cost.macs for n in graph.nodes),
        graph_bytes(graph),
    )
    return samples, evidence, point


def artifact_graph(row: RunRow) -> Graph:
    """The graph of a runs.csv row's artifact, checked against the hash the row recorded."""
    path = Path(row.artifact or "")
    if not path.is_file():
        raise CostError(f"artifact {path} of {row.model} is gone; re-export it")
    sha = row.artifact_sha256 or ""
    if sha and sha256_file(path) != sha:
        raise CostError(f"artifact {path} changed since {row.model} was measured")
    return read_graph(path, row.format, sha)


def graph_bytes(graph: Graph) -> int:
    """Memory traffic of a whole graph: every operator's bytes."""
    return sum(n.cost.bytes for n in graph.nodes)


def collect(
    stores: Iterable[RunStore], origins: Mapping[str, str], formats: Sequence[str] = GRAPH_FORMATS
) -> Measured:
    """Samples, evidence, calibration points and pair times of the kernel runs; kernel models
    flagged ``UNRELIABLE_FLAGS`` only where a format has too few others (``MIN_STEADY_MODELS``)."""
    out = Measured()
    unsteady: list[tuple[RunRow, Mapping[str, list[OpRow]], str]] = []
    for store in stores:
        ops = ops_by_job(store.ops)
        for row in store.runs:
            if row.ok and row.runs_its_model and row.format in formats and row.model in origins:
                if UNRELIABLE_FLAGS.intersection(row.flag_list):
                    unsteady.append((row, ops, origins[row.model]))
                else:
                    _collect_row(out, row, ops, origins[row.model])
    steady = Counter(p.format for p in out.points if not p.model.startswith("pair-"))
    for row, job_ops, origin in unsteady:
        flags = ", ".join(sorted(UNRELIABLE_FLAGS.intersection(row.flag_list)))
        if steady[row.format] >= MIN_STEADY_MODELS:
            out.skipped.append(f"{row.model} {row.format}: flagged {flags}, not steady")
        else:
            out.skipped.append(
                f"{row.model} {row.format}: flagged {flags}, kept: only {steady[row.format]} "
                f"steady {row.format} kernel models"
            )
            _collect_row(out, row, job_ops, origin)
    return out


def ops_by_job(ops: Iterable[OpRow]) -> dict[str, list[OpRow]]:
    """A run's ops.csv rows per job, each job's in profile order."""
    out: dict[str, list[OpRow]] = {}
    for op in ops:
        out.setdefault(op.job_id, []).append(op)
    for rows in out.values():
        rows.sort(key=lambda r: r.op_index or 0)  # every ops.csv row has its index
    return out


def _collect_row(out: Measured, row: RunRow, ops: Mapping[str, list[OpRow]], origin: str) -> None:
    """One kernel model's samples, evidence and point (or why it has none) into ``out``."""
    model, fmt = row.model, row.format
    rows = ops.get(row.job_id, [])
    if not rows or row.median_ms is None:
        out.skipped.append(f"{model} {fmt}: no operator profile")
        return
    try:
        graph = artifact_graph(row)
    except CostError as exc:
        out.skipped.append(f"{model} {fmt}: {exc}")
        return
    if model.startswith("pair-"):
        out.pair_times[(fmt, model)] = model_time_us(rows)
    macs = row.macs or sum(n.cost.macs for n in graph.nodes)
    out.add(measure_artifact(graph, rows, origin, model, row.median_ms * 1e3, macs))
