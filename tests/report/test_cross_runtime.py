"""The report's "Across runtimes" section: three runtimes' medians side by side on one device and
the winner per model family, on synthetic runs whose answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchharness.report import write_report
from benchharness.report.cross_runtime import cross_runtime, family_of, family_table
from benchharness.report.figures import analyze_runs
from benchharness.results.schema import OpRow, RunRow
from tests.report.synthetic import write_csv

#: model -> median ms under (onnxruntime/onnx, litert/tflite, executorch/pte); None: not measured
MEDIANS = {
    "resnet18": (10.0, 12.0, 8.0),
    "resnet34": (20.0, 22.0, 18.0),
    "mobilenet_v2": (4.0, 3.0, 5.0),
    "mobilenet_v3_small": (2.0, 1.0, 2.5),
    "squeezenet1_0": (6.0, None, 7.0),
}
STACKS = [("onnxruntime", "onnx"), ("litert", "tflite"), ("executorch", "pte")]


def write(root: Path, run_id: str = "r3") -> Path:
    rows = []
    for model, medians in MEDIANS.items():
        for (runtime, fmt), median in zip(STACKS, medians, strict=True):
            if median is None:
                continue
            rows.append({"schema_version": 1, "run_id": run_id, "job_id": f"{model}|{fmt}",
                         "device": "local", "runtime": runtime, "format": fmt,
                         "precision": "fp32", "model": model, "input_shape": "1x3x224x224",
                         "status": "ok", "n": 100, "median_ms": median, "macs": 1e9})  # fmt: skip
    path = root / run_id
    path.mkdir(parents=True)
    write_csv(path / "runs.csv", RunRow, rows)
    write_csv(path / "ops.csv", OpRow, [])
    (path / "run.json").write_text(json.dumps({"run_id": run_id}))
    return root


@pytest.mark.parametrize(
    ("model", "family"),
    [("resnet18", "resnet"), ("mobilenet_v3_small", "mobilenet"), ("mobilenetv1_100", "mobilenet"),
     ("shufflenet_v2_x0_5", "shufflenet"), ("efficientnet_b0", "efficientnet"),
     ("ghostnet_100", "ghostnet"), ("squeezenet1_1", "squeezenet"), ("dw_resnet34", "dw_resnet"),
     ("student_net@w0.5", "student_net"), ("cnn_gpt", "cnn_gpt")],
)  # fmt: skip
def test_family_is_the_name_before_its_version(model: str, family: str) -> None:
    assert family_of(model) == family


def test_medians_side_by_side_fastest_and_ratios(tmp_path: Path) -> None:
    (view,) = cross_runtime(analyze_runs(write(tmp_path), ["r3"]).series)
    labels = [view.stack_label(i) for i in range(3)]
    assert labels == ["executorch (pte)", "litert (tflite)", "onnxruntime (onnx)"]
    rows = {r.label: r for r in view.rows}
    assert rows["resnet18"].medians_ms == [8.0, 12.0, 10.0]
    assert labels[rows["resnet18"].fastest or 0] == "executorch (pte)"
    assert rows["resnet18"].ratio(2) == pytest.approx(10.0 / 8.0)
    # measured by two runtimes only: still side by side, the missing one empty
    assert rows["squeezenet1_0"].medians_ms == [7.0, None, 6.0]
    assert view.wins == [2, 2, 1]


def test_the_winner_per_family_is_the_lowest_geometric_mean(tmp_path: Path) -> None:
    (view,) = cross_runtime(analyze_runs(write(tmp_path), ["r3"]).series)
    winners = {f.family: (view.stack_label(f.winner), f.models) for f in view.families}
    assert winners == {"mobilenet": ("litert (tflite)", 2), "resnet": ("executorch (pte)", 2)}
    (resnet,) = [f for f in view.families if f.family == "resnet"]
    assert resnet.geomean_ms[0] == pytest.approx((8.0 * 18.0) ** 0.5)
    # squeezenet lacks a TFLite measurement: no family verdict on two of three runtimes
    assert "squeezenet" not in winners
    assert [c.text for c in family_table(view).rows[0]][-1] == "litert (tflite)"


def test_the_html_and_markdown_reports_have_the_section(tmp_path: Path) -> None:
    root = write(tmp_path / "results")
    for name in ("report.html", "report.md"):
        out = tmp_path / name
        write_report(["r3"], root, out)
        body = out.read_text(encoding="utf-8")
        assert "Across runtimes" in body and "which runtime wins per model family" in body
        assert "executorch (pte)" in body


def test_one_runtime_is_nothing_side_by_side(tmp_path: Path) -> None:
    analysis = analyze_runs(write(tmp_path), ["r3"])
    assert cross_runtime([s for s in analysis.series if s.key.runtime == "executorch"]) == []
