"""The report's tables as plain data, shared by the HTML and Markdown writers.

Built from the analysis (``figures``) with the cells of ``cells``, which also says how numbers
are written into them.
"""

from __future__ import annotations

import json
from typing import Any

from benchharness.report.cells import (
    Cell,
    Table,
    corr_text,
    num_cell,
    pct,
    ratio_text,
    scaled,
    sig,
)
from benchharness.report.figures import (
    HEADLINE_OUTLIERS,
    Analysis,
    CrossDevice,
    OpBreakdown,
    Point,
    RunInfo,
    Series,
    SeriesKey,
    point_label,
)
from benchharness.stats.summary import FLAG_ADVICE


def headline_table(analysis: Analysis) -> Table:
    table = Table(
        "Headline: does latency follow MACs?",
        [
            "device",
            "runtime",
            "format",
            "models",
            "Spearman (MACs)",
            "Kendall (MACs)",
            "slope",
            "R²",
            "Spearman (bytes)",
            "Kendall (bytes)",
            f"{HEADLINE_OUTLIERS} furthest off the MACs fit",
        ],
    )
    for s in analysis.series:
        c, b = s.corr_macs, s.corr_bytes
        off = "; ".join(
            f"{point_label(p, s.points)} ({ratio_text(p.residual_ratio)})"
            for p in s.by_residual[:HEADLINE_OUTLIERS]
        )
        table.rows.append(
            [
                Cell(s.key.device),
                Cell(s.key.runtime or "?"),
                Cell(s.key.format),
                num_cell(float(len(s.points)), str(len(s.points))),
                num_cell(c.spearman if c else None, corr_text(c.spearman if c else None)),
                num_cell(c.kendall if c else None, corr_text(c.kendall if c else None)),
                num_cell(s.fit.slope if s.fit else None),
                num_cell(s.fit.r2 if s.fit else None),
                num_cell(b.spearman if b else None, corr_text(b.spearman if b else None)),
                num_cell(b.kendall if b else None, corr_text(b.kendall if b else None)),
                Cell(off or "–"),
            ]
        )
    return table


def model_table(s: Series) -> Table:
    bytes_col = {"ops": "bytes (MB, per-op sum)", "estimate": "bytes (MB, model+act.)"}.get(
        s.bytes_source, "bytes (MB)"
    )
    table = Table(
        f"Models — {s.key.label}",
        [
            "model",
            "precision",
            "input",
            "median ms",
            "p90 ms",
            "IQR ms",
            "99% CI ms",
            "GMACs",
            "GMAC/s",
            bytes_col,
            "params (M)",
            "fit ms",
            "vs fit",
            "flags",
        ],
    )
    if s.fit is not None:
        table.note = (
            f"Fit: log10(ms) = {s.fit.intercept:.3f} + {s.fit.slope:.3f}·log10(MACs), "
            f"R² = {s.fit.r2:.3f}, n = {s.fit.n}. 'vs fit' is measured / predicted."
        )
    ci_note = (
        "99% CI: of the median across runner processes (Student's t on log process medians), "
        "so a rerun's median lies in it about 95 % of the time; one process (--quick): its "
        "samples alone."
    )
    table.note = f"{table.note} {ci_note}" if table.note else ci_note
    for p in s.points:
        table.rows.append(point_row(p, s))
    return table


def point_row(p: Point, s: Series) -> list[Cell]:
    ci = (
        f"{sig(p.ci99_low_ms)}–{sig(p.ci99_high_ms)}"
        if p.ci99_low_ms is not None and p.ci99_high_ms is not None
        else "–"
    )
    ratio = p.residual_ratio
    ratio_css = "num" if ratio is None else ("num slower" if ratio > 1 else "num faster")
    flags = ", ".join(p.flags) + (" (partial)" if p.status != "ok" else "")
    return [
        Cell(p.model, css="flagged" if p.flags else ""),
        Cell(p.precision),
        Cell(p.input_shape or "–"),
        num_cell(p.median_ms, css="num flagged" if p.flags else "num"),
        num_cell(p.p90_ms),
        num_cell(p.iqr_ms),
        Cell(ci, p.ci99_low_ms if p.ci99_low_ms is not None else "", "num"),
        scaled(p.macs, 1e9),
        num_cell(p.gmacs_per_s),
        scaled(p.traffic_bytes, 1e6),
        scaled(p.params, 1e6),
        num_cell(p.predicted_ms),
        Cell(ratio_text(ratio), ratio if ratio is not None else "", ratio_css),
        Cell(flags.strip(", ") or "", css="flagged" if p.flags else ""),
    ]


def gmacs_table(s: Series) -> Table:
    table = Table(f"Achieved GMAC/s — {s.key.label}", ["rank", "model", "GMAC/s", "median ms"])
    for i, p in enumerate(s.by_gmacs, 1):
        table.rows.append(
            [
                num_cell(float(i), str(i)),
                Cell(point_label(p, s.points)),
                num_cell(p.gmacs_per_s),
                num_cell(p.median_ms),
            ]
        )
    return table


def variants_table(s: Series) -> Table | None:
    if not s.variants:
        return None
    table = Table(
        f"Variants — {s.key.label}",
        ["family", "varies", "model", "precision", "input", "GMACs", "median ms", "GMAC/s"],
    )
    for group in s.variants:
        for p in group.points:
            table.rows.append(
                [
                    Cell(group.family),
                    Cell(", ".join(group.varies)),
                    Cell(p.model),
                    Cell(p.precision),
                    Cell(p.input_shape or "–"),
                    scaled(p.macs, 1e9),
                    num_cell(p.median_ms),
                    num_cell(p.gmacs_per_s),
                ]
            )
    return table


def op_table(b: OpBreakdown) -> Table:
    table = Table(
        f"Operator types — {b.model} ({b.precision}) on {b.key.label}",
        [
            "op type",
            "ops",
            "time µs",
            "time share",
            "MACs share",
            "bytes share",
            "time / MACs share",
        ],
    )
    for s in b.shares:
        excess = s.time_share / s.macs_share if s.macs_share else None
        table.rows.append(
            [
                Cell(s.op_type),
                num_cell(float(s.ops), str(s.ops)),
                num_cell(s.time_us),
                pct(s.time_share),
                pct(s.macs_share),
                pct(s.bytes_share),
                num_cell(excess),
            ]
        )
    return table


def cross_table(c: CrossDevice) -> Table:
    tau = corr_text(c.kendall, c.kendall_p)
    emulated = [k.device for k in (c.other, c.reference) if k.emulated]
    table = Table(
        f"{c.other.device} vs {c.reference.device} ({c.reference.runtime}, {c.reference.format})"
        + (f": {_platform(c.other)} vs {_platform(c.reference)}" if emulated or
           c.other.platform != c.reference.platform else ""),
        ["model", "latency ratio", "rank on " + c.reference.device, "rank on " + c.other.device],
        note=(
            f"Geometric mean ratio {sig(c.geomean_ratio)}; Kendall τ between devices {tau}; "
            + ("the model ranking changes." if c.ranking_changed else "the ranking is the same.")
            + (f" {' and '.join(emulated)} ran emulated: these ratios are the translator's, not "
               "a comparison of the hardware." if emulated else "")
        ),
    )  # fmt: skip
    for model, ratio in c.ratios:
        r1 = c.rank_reference.index(model) + 1
        r2 = c.rank_other.index(model) + 1
        table.rows.append(
            [
                Cell(model),
                num_cell(ratio),
                num_cell(float(r1), str(r1)),
                num_cell(float(r2), str(r2), "num slower" if r2 != r1 else "num"),
            ]
        )
    return table


def _platform(key: SeriesKey) -> str:
    return key.platform or "architecture not recorded"


def flagged_table(analysis: Analysis) -> Table:
    table = Table("Flagged measurements", ["series", "model", "precision", "median ms", "flags"])
    for f in analysis.flagged:
        table.rows.append(
            [
                Cell(f.key.label),
                Cell(f.point.model, css="flagged"),
                Cell(f.point.precision),
                num_cell(f.point.median_ms),
                Cell(", ".join(f.point.flags), css="flagged"),
            ]
        )
    return table


def flag_advice(analysis: Analysis) -> list[tuple[str, str]]:
    seen = sorted({flag for f in analysis.flagged for flag in f.point.flags})
    return [(flag, FLAG_ADVICE.get(flag, "")) for flag in seen]


def failed_table(analysis: Analysis) -> Table:
    table = Table("Failed measurements", ["run", "device", "model", "format", "status", "error"])
    for f in analysis.failed:
        table.rows.append(
            [
                Cell(f.run_id),
                Cell(f.device),
                Cell(f.model),
                Cell(f.format),
                Cell(f.status),
                Cell(f.error),
            ]
        )
    return table


def _flat(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, sort_keys=True)
    return "" if value is None else str(value)


def run_table(run: RunInfo) -> Table:
    """Method and environment of one run: run.json's sections plus what the rows recorded."""
    table = Table(f"Run {run.run_id}", ["section", "field", "value"], note=str(run.path))
    meta = run.meta
    for key in ("created", "finished", "harness_version", "seed"):
        if key in meta:
            table.rows.append([Cell("run"), Cell(key), Cell(_flat(meta[key]))])
    for section in ("method", "request", "host", "devices", "exporters", "outcome"):
        value = meta.get(section)
        if isinstance(value, dict):
            for k, v in value.items():
                table.rows.append([Cell(section), Cell(str(k)), Cell(_flat(v))])
        elif value not in (None, ""):
            table.rows.append([Cell(section), Cell(""), Cell(_flat(value))])
    for k, v in run.environment.items():
        table.rows.append([Cell("environment"), Cell(k), Cell(v)])
    return table
