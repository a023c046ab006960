"""The report's numbers against values computed independently from the synthetic CSVs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchharness.errors import ResultsError
from benchharness.report.figures import (
    BYTES_ESTIMATE,
    BYTES_FROM_OPS,
    Point,
    SeriesKey,
    analyze_runs,
    headline,
)
from benchharness.report.plots import point_style
from benchharness.report.tables import cross_table
from benchharness.results.schema import RUNS_COLUMNS
from benchharness.results.store import RunStore, atomic_write_text, rows_to_csv
from tests.report.synthetic import ALPHA_OPS, MODELS, write_run

A = SeriesKey("devA", "onnxruntime", "onnx")
B = SeriesKey("devB", "onnxruntime", "onnx")


@pytest.fixture()
def two_devices(tmp_path: Path) -> Path:
    write_run(tmp_path, "run-a", "devA", 1)
    write_run(tmp_path, "run-b", "devB", 2)
    return tmp_path


def _spearman_by_hand(x: list[float], y: list[float]) -> float:
    """1 - 6 sum d^2 / (n (n^2 - 1)), valid without ties (the synthetic data has none)."""
    rx = {v: i for i, v in enumerate(sorted(x))}
    ry = {v: i for i, v in enumerate(sorted(y))}
    n = len(x)
    d2 = sum((rx[a] - ry[b]) ** 2 for a, b in zip(x, y, strict=True))
    return 1 - 6 * d2 / (n * (n * n - 1))


def _kendall_by_hand(x: list[float], y: list[float]) -> float:
    n = len(x)
    s = 0
    for i in range(n):
        for j in range(i + 1, n):
            s += int(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]))
    return s / (n * (n - 1) / 2)


def test_fit_and_correlations_per_series(two_devices: Path) -> None:
    analysis = analyze_runs(two_devices, ["run-a", "run-b"])
    assert [s.key for s in analysis.series] == [A, B]
    for key, col in ((A, 1), (B, 2)):
        series = analysis.series_for(key)
        assert series is not None
        macs = [v[0] for v in MODELS.values()]
        ms = [v[col] for v in MODELS.values()]
        ref = stats.linregress(np.log10(macs), np.log10(ms))
        assert series.fit is not None
        assert series.fit.slope == pytest.approx(ref.slope, rel=1e-9)
        assert series.fit.intercept == pytest.approx(ref.intercept, rel=1e-9)
        assert series.fit.r2 == pytest.approx(ref.rvalue**2, rel=1e-9)
        assert series.corr_macs is not None
        assert series.corr_macs.spearman == pytest.approx(_spearman_by_hand(macs, ms))
        assert series.corr_macs.kendall == pytest.approx(_kendall_by_hand(macs, ms))
        assert series.corr_macs.n == len(MODELS)


def test_residuals_name_the_models_off_the_fit(two_devices: Path) -> None:
    series = analyze_runs(two_devices, ["run-a"]).series[0]
    macs = np.array([v[0] for v in MODELS.values()])
    ms = np.array([v[1] for v in MODELS.values()])
    ref = stats.linregress(np.log10(macs), np.log10(ms))
    resid = np.log10(ms) - (ref.intercept + ref.slope * np.log10(macs))
    expected = [name for _, name in sorted(zip(-abs(resid), MODELS, strict=True))]
    assert [p.model for p in series.by_residual] == expected
    by_model = {p.model: p for p in series.points}
    for name, r in zip(MODELS, resid, strict=True):
        assert by_model[name].residual_log10 == pytest.approx(r)
        assert by_model[name].residual_ratio == pytest.approx(10**r)
    # gamma (6e8 MACs in 7 ms) is faster than its MACs predict, beta slower
    gamma, beta = by_model["gamma"].residual_ratio, by_model["beta"].residual_ratio
    assert gamma is not None and beta is not None and gamma < 1 < beta
    top = headline(analyze_runs(two_devices, ["run-a"]))[0]["furthest_off_fit"]
    assert [t["model"] for t in top] == expected[:3]


def test_gmacs_per_s_sorted(two_devices: Path) -> None:
    series = analyze_runs(two_devices, ["run-a"]).series[0]
    want = {m: v[0] / (v[1] / 1e3) / 1e9 for m, v in MODELS.items()}
    assert [p.model for p in series.by_gmacs] == sorted(want, key=lambda m: -want[m])
    for p in series.points:
        assert p.gmacs_per_s == pytest.approx(want[p.model])
    assert by_name(series.points, "gamma").gmacs_per_s == pytest.approx(6e8 / 7e-3 / 1e9)


def by_name(points: list[Point], name: str) -> Point:
    return next(p for p in points if p.model == name)


def test_bytes_from_ops_else_estimate(two_devices: Path) -> None:
    analysis = analyze_runs(two_devices, ["run-a", "run-b"])
    a = analysis.series_for(A)
    assert a is not None
    alpha = by_name(a.points, "alpha")
    assert alpha.bytes_source == BYTES_FROM_OPS
    assert alpha.traffic_bytes == pytest.approx(3e6 + 1e6 + 2e6)  # the empty cell is skipped
    beta = by_name(a.points, "beta")
    assert beta.bytes_source == BYTES_ESTIMATE
    assert beta.traffic_bytes == pytest.approx(12e6 + 3e6)
    assert a.bytes_source == "mixed"
    assert any("devA" in n and "lower bound" in n for n in analysis.notes)
    b = analysis.series_for(B)
    assert b is not None and b.bytes_source == BYTES_ESTIMATE
    xb = [v[3] + v[4] for v in MODELS.values()]
    ms = [v[2] for v in MODELS.values()]
    assert b.corr_bytes is not None
    assert b.corr_bytes.spearman == pytest.approx(stats.spearmanr(xb, ms).statistic)
    assert b.corr_bytes.kendall == pytest.approx(stats.kendalltau(xb, ms).statistic)


def test_op_type_shares(two_devices: Path) -> None:
    analysis = analyze_runs(two_devices, ["run-a"])
    assert len(analysis.op_breakdowns) == 1
    b = analysis.op_breakdowns[0]
    assert (b.model, b.key) == ("alpha", A)
    total_us = sum(o[1] for o in ALPHA_OPS)
    shares = {s.op_type: s for s in b.shares}
    assert shares["Conv"].time_share == pytest.approx(1500 / total_us)
    assert shares["Conv"].macs_share == pytest.approx(1.0)
    assert shares["Conv"].bytes_share == pytest.approx(4e6 / 6e6)
    assert shares["Relu"].time_share == pytest.approx(400 / total_us)
    assert shares["Relu"].macs_share == 0.0
    assert shares["Add"].bytes_share == 0.0
    assert shares["Conv"].ops == 2
    assert b.shares[0].op_type == "Conv"  # largest share of time first


def test_cross_device_ratios_and_ranking(two_devices: Path) -> None:
    analysis = analyze_runs(two_devices, ["run-a", "run-b"])
    (c,) = analysis.cross_device
    assert (c.reference, c.other) == (A, B)
    ratios = dict(c.ratios)
    for m, v in MODELS.items():
        assert ratios[m] == pytest.approx(v[2] / v[1])
    geo = math.exp(sum(math.log(v[2] / v[1]) for v in MODELS.values()) / len(MODELS))
    assert c.geomean_ratio == pytest.approx(geo)
    a_ms = [v[1] for v in MODELS.values()]
    b_ms = [v[2] for v in MODELS.values()]
    assert c.kendall == pytest.approx(_kendall_by_hand(a_ms, b_ms))
    # gamma beats beta on devA but not on devB: the ranking changes
    assert c.ranking_changed
    assert c.rank_reference.index("gamma") < c.rank_reference.index("beta")
    assert c.rank_other.index("gamma") > c.rank_other.index("beta")


def test_flags_failures_and_variants(two_devices: Path) -> None:
    analysis = analyze_runs(two_devices, ["run-a", "run-b"])
    assert [(f.key, f.point.model, f.point.flags) for f in analysis.flagged] == [
        (A, "beta", ("HIGH_IQR", "DRIFT"))
    ]
    assert {(f.device, f.model, f.status) for f in analysis.failed} == {
        ("devA", "broken", "failed"),
        ("devB", "broken", "failed"),
    }
    a = analysis.series_for(A)
    assert a is not None
    (group,) = a.variants
    assert group.family == "alpha"
    assert [p.model for p in group.points] == ["alpha@w0.5", "alpha"]  # ordered by MACs
    assert group.varies == ("model",)


def test_precision_variants_share_a_family(tmp_path: Path) -> None:
    path = write_run(tmp_path, "run-a", "devA", 1, with_ops=False)
    rows = RunStore.open(tmp_path, "run-a").runs
    extra = rows[0].replace(precision="int8", job_id="x", median_ms=0.9, macs=1e8)
    atomic_write_text(path / "runs.csv", rows_to_csv(RUNS_COLUMNS, [*rows, extra]))
    a = analyze_runs(tmp_path, ["run-a"]).series[0]
    group = next(g for g in a.variants if g.family == "alpha")
    assert set(group.varies) == {"model", "precision"}
    assert {(p.model, p.precision) for p in group.points} == {
        ("alpha", "fp32"),
        ("alpha", "int8"),
        ("alpha@w0.5", "fp32"),
    }


def test_quartiles_from_samples(two_devices: Path) -> None:
    a = analyze_runs(two_devices, ["run-a"]).series[0]
    alpha = by_name(a.points, "alpha")
    assert (alpha.q1_ms, alpha.q3_ms) == (2.0, 4.0)  # np.quantile of 1..5
    assert by_name(a.points, "beta").q1_ms is None


def test_later_run_wins_on_duplicates(tmp_path: Path) -> None:
    write_run(tmp_path, "run-1", "devA", 1)
    write_run(tmp_path, "run-2", "devA", 2)  # same device, other numbers
    analysis = analyze_runs(tmp_path, ["run-1", "run-2"])
    (series,) = analysis.series
    assert by_name(series.points, "alpha").median_ms == MODELS["alpha"][2]
    assert any("run-1 and run-2" in n for n in analysis.notes)


def test_missing_and_empty_runs(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no results folder"):
        analyze_runs(tmp_path, ["nope"])
    with pytest.raises(ResultsError, match="no run given"):
        analyze_runs(tmp_path, [])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "run.json").write_text("{}")
    with pytest.raises(ResultsError, match="no rows"):
        analyze_runs(tmp_path, ["empty"])


def test_too_few_points_and_empty_cells(tmp_path: Path) -> None:
    path = write_run(tmp_path, "run-a", "devA", 1, with_ops=False, failed=False)
    rows = RunStore.open(tmp_path, "run-a").runs[:2]
    rows[1] = rows[1].replace(macs=None)  # a model whose MACs could not be counted
    atomic_write_text(path / "runs.csv", rows_to_csv(RUNS_COLUMNS, rows))
    analysis = analyze_runs(tmp_path, ["run-a"])
    (s,) = analysis.series
    assert s.fit is None and s.corr_macs is None
    assert [p.model for p in s.by_gmacs] == ["alpha"]
    assert analysis.op_breakdowns == []
    assert headline(analysis)[0]["spearman_macs"] is None


#: What the probe writes on an aarch64 board emulated by qemu-user, and on this x86 host.
EMULATED_ARM = {"arch": "aarch64", "emulated": "qemu-user", "flags": "EMULATED"}
NATIVE_X86 = {"arch": "x86_64"}


def test_series_say_their_architecture_and_emulation(tmp_path: Path) -> None:
    write_run(tmp_path, "run-a", "devA", 1, environment=NATIVE_X86)
    write_run(tmp_path, "run-b", "devB", 2, environment=EMULATED_ARM)
    analysis = analyze_runs(tmp_path, ["run-a", "run-b"])
    a, b = analysis.series
    assert a.key.platform == "x86_64" and "emulated" not in a.key.label
    assert b.key.platform == "aarch64, emulated (qemu-user)"
    assert b.key.label.endswith("· aarch64, emulated (qemu-user)")
    assert a.key == A and b.key == B  # the platform describes a series, it does not split one
    assert all(p.emulated == "qemu-user" for p in b.points)
    assert not any(p.emulated for p in a.points)


def test_a_cross_architecture_comparison_says_which_is_which(tmp_path: Path) -> None:
    write_run(tmp_path, "run-a", "devA", 1, environment=NATIVE_X86)
    write_run(tmp_path, "run-b", "devB", 2, environment=EMULATED_ARM)
    (c,) = analyze_runs(tmp_path, ["run-a", "run-b"]).cross_device
    table = cross_table(c)
    assert "x86_64" in table.title and "aarch64, emulated (qemu-user)" in table.title
    assert "emulat" in table.note and "not" in table.note  # the ratio is no hardware comparison


def test_emulated_points_are_drawn_apart(tmp_path: Path) -> None:
    write_run(tmp_path, "run-b", "devB", 2, environment=EMULATED_ARM)
    write_run(tmp_path, "run-a", "devA", 1, environment=NATIVE_X86)
    analysis = analyze_runs(tmp_path, ["run-a", "run-b"])
    a, b = analysis.series
    emulated, native = point_style(b.points[0]), point_style(a.points[0])
    assert emulated.marker != native.marker
    assert "emulated" in emulated.suffix and "emulated" not in native.suffix
    flagged = next(p for p in a.points if p.flags)
    assert point_style(flagged).suffix == " !" and point_style(flagged).hollow
