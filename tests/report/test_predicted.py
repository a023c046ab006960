"""The report's predictor section: present when the device has a predictor, absent otherwise."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from benchharness.predict.build import predictor_path
from benchharness.predict.predictor import Predictor
from benchharness.predict.samples import Measured, measure_artifact
from benchharness.report import write_report
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from tests.predict import synthetic as S


def _run(results: Path, artifact: Any) -> str:
    store = RunStore.create(results, "run-p")
    for name, macs, median in (("small", 1e6, 0.2), ("large", 4e6, 0.5)):
        store.add_job(
            RunRow.from_values(
                {
                    "job_id": f"local|{name}|onnx",
                    "device": "local",
                    "runtime": "onnxruntime",
                    "runtime_version": "1.32.0",
                    "format": "onnx",
                    "precision": "fp32",
                    "model": name,
                    "input_shape": "1x3x32x32",
                    "status": "ok",
                    "n": 100,
                    "median_ms": median,
                    "macs": macs,
                    "artifact": str(artifact.path),
                    "artifact_sha256": artifact.sha256,
                    "threads": 2,
                    "cpu_model": "Xeon",
                    "stats_source": "samples",
                }
            )
        )
    return store.run_id


def _predictor() -> Predictor:
    rng = random.Random(3)
    m = Measured()
    for i in range(20):
        g = S.random_model(rng)
        m.add(measure_artifact(g, S.fake_rows(g), "random", f"m{i}", S.fake_e2e_us(g)))
    return Predictor.fit(m, {"device": "local", "threads": 4}, seed=0)


@pytest.mark.parametrize("with_predictor", [True, False])
def test_predicted_section(tmp_path: Path, tiny_artifacts: Any, with_predictor: bool) -> None:
    results = tmp_path / "results"
    run_id = _run(results, tiny_artifacts["onnx"])
    if with_predictor:
        _predictor().save(predictor_path(results, "local"))
    out = tmp_path / "report.md"
    result = write_report([run_id], results, out)
    text = out.read_text()
    if not with_predictor:
        assert not result.analysis.predictions and "Predicted vs measured" not in text
        return
    (table,) = result.analysis.predictions
    assert [r[0].text for r in table.rows] == ["small", "large"]
    assert all(float(r[2].text) > 0 for r in table.rows)  # a prediction for each model
    assert "## Predicted vs measured" in text and "Within ±10%" in text
    # the predictor was built with other threads than the run: the note says so
    assert "threads: predictor 4, now 2" in table.note
    html = write_report([run_id], results, tmp_path / "report.html").path.read_text()
    assert 'id="predicted"' in html
