"""Latency against MACs and bytes: the numbers behind the report, as plain data (no plotting).

A *series* is one (device, runtime, format): the measurements that can fairly be set against each
other, since they share hardware and software. Within a series every model (and each of its
variants: another precision, input shape or ``name@variant``) is one *point*.

Memory traffic ("bytes") of a point is the sum of the per-operator ``bytes`` of ``ops.csv`` (every
input, weight and output each operator reads or writes, docs/method.md) when the run profiled
operators; otherwise it falls back to ``model_bytes + activation_bytes`` (weights read once plus
the peak activation footprint) -- a lower bound on traffic, so each point records which of the two
it used (``bytes_source``) and a series that mixes them says so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from scipy import stats as sps

from benchharness.file_names import safe_file_name
from benchharness.report.cells import Table
from benchharness.report.fits import (
    MIN_POINTS_CORRELATION,
    Correlation,
    Fit,
    loglog_fit,
    rank_correlation,
)
from benchharness.report.loading import environment, load, ops_traffic, quartiles
from benchharness.report.memory_section import MemoryPoint, memory_points
from benchharness.results.schema import OpRow, RunRow, SampleRow
from benchharness.results.store import RunStore

#: How many models the headline names as furthest off the fit, per series.
HEADLINE_OUTLIERS = 3
#: Statuses whose numbers are measurements (a ``partial`` row has fewer processes than asked).
MEASURED_STATUSES = ("ok", "partial")
#: Separates a model's family from its variant tag in names like ``student_net@w0.5``.
VARIANT_SEPARATOR = "@"

#: How a platform says its CPU was translated (``platform_of``).
EMULATED_WORD = "emulated"

BYTES_FROM_OPS = "ops"
BYTES_ESTIMATE = "estimate"

#: The rows of ``ops.csv`` and ``samples.csv``: matched to their ``runs.csv`` row by run and job id.
_JobRow = TypeVar("_JobRow", OpRow, SampleRow)


@dataclass(frozen=True)
class SeriesKey:
    device: str
    runtime: str
    format: str
    #: what the device's rows ran on (``platform_of``): describes a series, never splits one
    platform: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        runtime = self.runtime or "?"
        where = f" · {self.platform}" if self.platform else ""
        return f"{self.device} · {runtime} ({self.format}){where}"

    @property
    def emulated(self) -> bool:
        return EMULATED_WORD in self.platform

    @property
    def slug(self) -> str:
        """The series in a file name (a Markdown report's images): safe, bounded and unique
        however long or odd the device name is."""
        return safe_file_name(f"{self.device}-{self.runtime or 'na'}-{self.format}")


@dataclass
class Point:
    """One measured model in one series."""

    run_id: str
    job_id: str
    model: str
    precision: str
    input_shape: str
    status: str
    median_ms: float
    p90_ms: float | None = None
    iqr_ms: float | None = None
    q1_ms: float | None = None  # from samples.csv (the same np.quantile as stats.py), if kept
    q3_ms: float | None = None
    ci99_low_ms: float | None = None
    ci99_high_ms: float | None = None
    n: int | None = None
    macs: float | None = None
    flops: float | None = None
    params: float | None = None
    model_bytes: float | None = None
    activation_bytes: float | None = None
    traffic_bytes: float | None = None
    bytes_source: str = ""
    flags: tuple[str, ...] = ()
    gmacs_per_s: float | None = None
    predicted_ms: float | None = None
    residual_log10: float | None = None
    #: the translator the row ran under (``qemu-user``, ``rosetta``), empty when native
    emulated: str = ""

    @property
    def family(self) -> str:
        return self.model.split(VARIANT_SEPARATOR, 1)[0]

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.model, self.precision, self.input_shape)

    @property
    def residual_ratio(self) -> float | None:
        """measured / predicted by the fit: above 1 slower than its MACs predict."""
        return None if self.residual_log10 is None else 10**self.residual_log10


@dataclass
class Variants:
    """Points of one family in one series, ordered by MACs so a plot can join them."""

    family: str
    points: list[Point]
    varies: tuple[str, ...]  # which of model name, precision, input_shape differ


@dataclass
class Series:
    key: SeriesKey
    points: list[Point]
    fit: Fit | None = None
    corr_macs: Correlation | None = None
    fit_bytes: Fit | None = None
    corr_bytes: Correlation | None = None
    bytes_source: str = ""  # ops, estimate, mixed or empty
    variants: list[Variants] = field(default_factory=list)

    @property
    def by_gmacs(self) -> list[Point]:
        """Points with a GMAC/s figure, fastest compute first."""
        have = [p for p in self.points if p.gmacs_per_s is not None]
        return sorted(have, key=lambda p: -(p.gmacs_per_s or 0.0))

    @property
    def by_residual(self) -> list[Point]:
        """Points furthest off the MACs fit first."""
        have = [p for p in self.points if p.residual_log10 is not None]
        return sorted(have, key=lambda p: -abs(p.residual_log10 or 0.0))


@dataclass
class OpTypeShare:
    op_type: str
    time_us: float
    time_share: float
    macs: float
    macs_share: float | None
    bytes: float
    bytes_share: float | None
    ops: int


@dataclass
class OpBreakdown:
    """Per operator type of one measured model: share of time vs share of MACs vs bytes."""

    key: SeriesKey
    model: str
    precision: str
    input_shape: str
    shares: list[OpTypeShare]


@dataclass
class CrossDevice:
    """The same models on two devices (same runtime and format)."""

    reference: SeriesKey
    other: SeriesKey
    ratios: list[tuple[str, float]]  # (model label, other / reference median)
    geomean_ratio: float | None
    kendall: float | None
    kendall_p: float | None
    rank_reference: list[str]
    rank_other: list[str]

    @property
    def ranking_changed(self) -> bool:
        return self.rank_reference != self.rank_other


@dataclass
class Flagged:
    key: SeriesKey
    point: Point


@dataclass
class Failed:
    run_id: str
    device: str
    model: str
    format: str
    precision: str
    status: str
    error: str


@dataclass
class RunInfo:
    run_id: str
    path: Path
    meta: dict[str, Any]
    environment: dict[str, str]  # first row's cpu_model, runtime_version, threads, ...


@dataclass
class Analysis:
    runs: list[RunInfo]
    series: list[Series]
    op_breakdowns: list[OpBreakdown]
    cross_device: list[CrossDevice]
    flagged: list[Flagged]
    failed: list[Failed]
    notes: list[str]
    #: measured peak memory against the estimate (``report/memory_section.py``)
    memory: list[MemoryPoint] = field(default_factory=list)
    # predicted vs measured tables (report/predicted.py), when a device has a predictor
    predictions: list[Table] = field(default_factory=list)

    def series_for(self, key: SeriesKey) -> Series | None:
        return next((s for s in self.series if s.key == key), None)


def gmacs_per_s(macs: float | None, median_ms: float) -> float | None:
    if not macs or median_ms <= 0:
        return None
    return macs / (median_ms / 1e3) / 1e9


def analyze_runs(results_dir: Path, run_ids: Sequence[str]) -> Analysis:
    return analyze(load(results_dir, run_ids))


def analyze(stores: Sequence[RunStore]) -> Analysis:
    """Everything the report shows, from already opened runs (later runs win on duplicates)."""
    notes: list[str] = []
    failed: list[Failed] = []
    grouped: dict[SeriesKey, dict[tuple[str, str, str], Point]] = {}
    ops_by_job: dict[tuple[str, str], list[OpRow]] = defaultdict(list)
    for store in stores:
        ops = _with_run_id(store.ops, store.run_id)
        for op in ops:
            ops_by_job[(op.run_id, op.job_id)].append(op)
        measured, store_failed = _store_points(store, ops)
        failed.extend(store_failed)
        for key, point in measured:
            _keep(grouped.setdefault(key, {}), key, point, notes)
    series = [_series(key, list(points.values())) for key, points in grouped.items()]
    series.sort(key=lambda s: (s.key.device, s.key.runtime, s.key.format))
    notes.extend(_mixed_bytes_notes(series))
    return Analysis(
        memory=memory_points([(store.run_id, store.runs) for store in stores]),
        runs=[RunInfo(s.run_id, s.path, dict(s.meta), environment(s.runs)) for s in stores],
        series=series,
        op_breakdowns=_op_breakdowns(ops_by_job, series),
        cross_device=_cross_device(series),
        flagged=[Flagged(s.key, p) for s in series for p in s.points if p.flags],
        failed=failed,
        notes=notes,
    )


def _with_run_id(rows: Sequence[_JobRow], run_id: str) -> list[_JobRow]:
    """The rows, those without a run id (a hand-made or imported CSV) given the run's own."""
    return [r if r.run_id else r.replace(run_id=run_id) for r in rows]


def _store_points(
    store: RunStore, ops: Sequence[OpRow]
) -> tuple[list[tuple[SeriesKey, Point]], list[Failed]]:
    """One run's measured rows as points of their series, and the rows without a measurement."""
    rid = store.run_id
    traffic = ops_traffic(ops)
    job_quartiles = quartiles(_with_run_id(store.samples, rid))
    measured: list[tuple[SeriesKey, Point]] = []
    failed: list[Failed] = []
    for row in store.runs:
        median = row.median_ms
        if row.status not in MEASURED_STATUSES or median is None or median <= 0:
            failed.append(_failed(rid, row))
            continue
        point = _point(rid, row, median)
        point.q1_ms, point.q3_ms = job_quartiles.get((rid, row.job_id), (None, None))
        _set_traffic(point, traffic.get((rid, row.job_id)))
        key = SeriesKey(row.device, row.runtime or "", row.format, platform_of(row))
        measured.append((key, point))
    return measured, failed


def platform_of(row: RunRow) -> str:
    """``aarch64``, ``aarch64, emulated (qemu-user)``, or empty for a row that did not say."""
    if row.emulated:
        return f"{row.arch or '?'}, {EMULATED_WORD} ({row.emulated})"
    return row.arch or ""


def _failed(run_id: str, row: RunRow) -> Failed:
    return Failed(
        run_id,
        row.device,
        row.model,
        row.format,
        row.precision,
        row.status or "?",
        row.error or "no median",
    )


def _point(run_id: str, row: RunRow, median_ms: float) -> Point:
    """The point of a measured row (``median_ms`` its positive median)."""
    return Point(
        run_id=run_id,
        job_id=row.job_id,
        model=row.model,
        precision=row.precision,
        input_shape=row.input_shape or "",
        status=row.status,
        median_ms=median_ms,
        p90_ms=row.p90_ms,
        iqr_ms=row.iqr_ms,
        ci99_low_ms=row.ci99_low_ms,
        ci99_high_ms=row.ci99_high_ms,
        n=row.n,
        macs=row.macs,
        flops=row.flops,
        params=row.params,
        model_bytes=row.model_bytes,
        activation_bytes=row.activation_bytes,
        flags=tuple(row.flag_list),
        gmacs_per_s=gmacs_per_s(row.macs, median_ms),
        emulated=row.emulated or "",
    )


def _set_traffic(point: Point, ops_bytes: float | None) -> None:
    """The point's memory traffic: its operators' bytes (``ops_bytes``) where the run profiled
    them, else the lower bound from the model's weights and peak activations."""
    if ops_bytes is not None:
        point.traffic_bytes, point.bytes_source = ops_bytes, BYTES_FROM_OPS
    elif point.model_bytes is not None or point.activation_bytes is not None:
        point.traffic_bytes = (point.model_bytes or 0.0) + (point.activation_bytes or 0.0)
        point.bytes_source = BYTES_ESTIMATE


def _keep(
    bucket: dict[tuple[str, str, str], Point], key: SeriesKey, point: Point, notes: list[str]
) -> None:
    """Put ``point`` in its series' ``bucket``; a model measured again replaces the earlier
    measurement, and ``notes`` says so."""
    earlier = bucket.get(point.ident)
    if earlier is not None:
        notes.append(
            f"{key.label} {point.model} {point.precision}: measured in "
            f"{earlier.run_id} and {point.run_id}; the report uses {point.run_id}"
        )
    bucket[point.ident] = point


def _mixed_bytes_notes(series: Sequence[Series]) -> list[str]:
    return [
        f"{s.key.label}: bytes come from per-operator traffic for some models and from "
        "model + activation bytes (a lower bound) for others; compare with care"
        for s in series
        if s.bytes_source == "mixed"
    ]


def _op_breakdowns(
    ops_by_job: dict[tuple[str, str], list[OpRow]], series: Sequence[Series]
) -> list[OpBreakdown]:
    """The operator-type breakdown of every point the series kept whose run profiled its ops."""
    kept = {(p.run_id, p.job_id): (s.key, p) for s in series for p in s.points}
    breakdowns = [
        b
        for job, rows in ops_by_job.items()
        if job in kept and (b := _breakdown(*kept[job], rows)) is not None
    ]
    breakdowns.sort(key=lambda b: (b.key.device, b.key.runtime, b.key.format, b.model))
    return breakdowns


def _series(key: SeriesKey, points: list[Point]) -> Series:
    points.sort(key=lambda p: (p.macs if p.macs is not None else math.inf, p.model))
    s = Series(key=key, points=points)
    with_macs = [p for p in points if p.macs and p.macs > 0]
    s.fit = loglog_fit([p.macs or 0.0 for p in with_macs], [p.median_ms for p in with_macs])
    s.corr_macs = rank_correlation(
        [p.macs or 0.0 for p in with_macs], [p.median_ms for p in with_macs]
    )
    if s.fit is not None:
        for p in with_macs:
            p.predicted_ms = s.fit.predict(p.macs or 0.0)
            p.residual_log10 = math.log10(p.median_ms / p.predicted_ms)
    with_bytes = [p for p in points if p.traffic_bytes and p.traffic_bytes > 0]
    xb = [p.traffic_bytes or 0.0 for p in with_bytes]
    s.fit_bytes = loglog_fit(xb, [p.median_ms for p in with_bytes])
    s.corr_bytes = rank_correlation(xb, [p.median_ms for p in with_bytes])
    sources = {p.bytes_source for p in with_bytes}
    s.bytes_source = sources.pop() if len(sources) == 1 else ("mixed" if sources else "")
    s.variants = variant_groups(points)
    return s


def variant_groups(points: Sequence[Point]) -> list[Variants]:
    """Families with more than one point (precision, input shape or ``@variant`` differ)."""
    families: dict[str, list[Point]] = defaultdict(list)
    for p in points:
        families[p.family].append(p)
    groups = []
    for family, members in sorted(families.items()):
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda p: (p.macs or 0.0, p.median_ms))
        varies = tuple(
            label
            for label, attr in (
                ("model", "model"),
                ("precision", "precision"),
                ("input_shape", "input_shape"),
            )
            if len({getattr(p, attr) for p in members}) > 1
        )
        groups.append(Variants(family=family, points=members, varies=varies))
    return groups


def point_label(p: Point, series_points: Sequence[Point] | None = None) -> str:
    """The model name, plus precision / input shape where they tell it from its family."""
    parts = [p.model]
    if series_points is not None:
        same = [q for q in series_points if q.model == p.model]
        if len({q.precision for q in same}) > 1:
            parts.append(p.precision)
        if len({q.input_shape for q in same}) > 1:
            parts.append(p.input_shape)
    return " ".join(parts)


def _share(part: float, total: float) -> float | None:
    return part / total if total > 0 else None


def _breakdown(key: SeriesKey, point: Point, ops: Sequence[OpRow]) -> OpBreakdown | None:
    time: dict[str, float] = defaultdict(float)
    macs: dict[str, float] = defaultdict(float)
    nbytes: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for op in ops:
        op_type = op.op_type or "?"
        count[op_type] += 1
        time[op_type] += op.median_us or 0.0
        macs[op_type] += op.macs or 0.0
        nbytes[op_type] += op.bytes or 0.0
    total_t, total_m, total_b = sum(time.values()), sum(macs.values()), sum(nbytes.values())
    if total_t <= 0 and total_m <= 0 and total_b <= 0:
        return None
    shares = [
        OpTypeShare(
            op_type=t,
            time_us=time[t],
            time_share=_share(time[t], total_t) or 0.0,
            macs=macs[t],
            macs_share=_share(macs[t], total_m),
            bytes=nbytes[t],
            bytes_share=_share(nbytes[t], total_b),
            ops=count[t],
        )
        for t in count
    ]
    shares.sort(key=lambda s: (-s.time_share, -(s.macs_share or 0.0), s.op_type))
    return OpBreakdown(key, point.model, point.precision, point.input_shape, shares)


def _cross_device(series: Sequence[Series]) -> list[CrossDevice]:
    """Each further device against the first one (by name) with the same runtime and format."""
    by_stack: dict[tuple[str, str], list[Series]] = defaultdict(list)
    for s in series:
        by_stack[(s.key.runtime, s.key.format)].append(s)
    out = []
    for stack in sorted(by_stack):
        group = sorted(by_stack[stack], key=lambda s: s.key.device)
        ref = group[0]
        for other in group[1:]:
            ref_points = {p.ident: p for p in ref.points}
            common = [(ref_points[p.ident], p) for p in other.points if p.ident in ref_points]
            if not common:
                continue
            label = {q.ident: point_label(q, ref.points) for q, _ in common}
            ratios = [(label[a.ident], b.median_ms / a.median_ms) for a, b in common]
            geomean = float(np.exp(np.mean(np.log([r for _, r in ratios]))))
            tau = tau_p = None
            if len(common) >= MIN_POINTS_CORRELATION:
                res = sps.kendalltau(
                    [a.median_ms for a, _ in common], [b.median_ms for _, b in common]
                )
                tau, tau_p = float(res.statistic), float(res.pvalue)
            rank_ref = [label[a.ident] for a, _ in sorted(common, key=lambda ab: ab[0].median_ms)]
            rank_other = [label[a.ident] for a, _ in sorted(common, key=lambda ab: ab[1].median_ms)]
            out.append(
                CrossDevice(ref.key, other.key, ratios, geomean, tau, tau_p, rank_ref, rank_other)
            )
    return out


def headline(analysis: Analysis) -> list[dict[str, Any]]:
    """Per series: correlations, the fit and the models furthest off it (JSON-ready)."""
    rows = []
    for s in analysis.series:
        rows.append(
            {
                "device": s.key.device,
                "runtime": s.key.runtime,
                "format": s.key.format,
                "models": len(s.points),
                "spearman_macs": s.corr_macs.spearman if s.corr_macs else None,
                "kendall_macs": s.corr_macs.kendall if s.corr_macs else None,
                "slope_macs": s.fit.slope if s.fit else None,
                "r2_macs": s.fit.r2 if s.fit else None,
                "spearman_bytes": s.corr_bytes.spearman if s.corr_bytes else None,
                "kendall_bytes": s.corr_bytes.kendall if s.corr_bytes else None,
                "bytes_source": s.bytes_source,
                "furthest_off_fit": [
                    {"model": point_label(p, s.points), "ratio": p.residual_ratio}
                    for p in s.by_residual[:HEADLINE_OUTLIERS]
                ],
            }
        )
    return rows
