"""The report's predictor section: present when the device has a predictor, absent otherwise."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from benchharness.predict.build import PREDICTORS_DIR, predictor_path
from benchharness.predict.network_cal import NetworkPoint
from benchharness.predict.predictor import Predictor
from benchharness.predict.predictor_file import FILE_KIND
from benchharness.predict.samples import Measured, measure_artifact
from benchharness.report import write_report
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from tests.predict import synthetic as S
from tests.report.synthetic import write_run

#: The longest file name Linux file systems take (bytes).
NAME_MAX = 255


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
    # each with its interval around it (20 kernel models: the build could bound it)
    for r in table.rows:
        low, high = (float(x) for x in r[3].text.split("–"))
        assert low < float(r[2].text) < high
    assert "Inside the predictor's 90 % interval:" in table.note and " of 2." in table.note
    # the synthetic predictor's fingerprint names no CPU: this host's graph is not the device's
    assert "Kernels inferred from fusion evidence." in table.note
    assert "## Predicted vs measured" in text and "Within ±10%" in text
    # the predictor was built with other threads than the run: the note says so
    assert "threads: predictor 4, now 2" in table.note
    html = write_report([run_id], results, tmp_path / "report.html").path.read_text()
    assert 'id="predicted"' in html


def test_models_the_network_stage_learnt_from_are_said_to_be_no_test(
    tmp_path: Path, tiny_artifacts: Any
) -> None:
    results = tmp_path / "results"
    run_id = _run(results, tiny_artifacts["onnx"])
    plain = _predictor()
    learnt = [NetworkPoint("onnx", "small", "f", 0.2, 0.25, run_id)]
    elsewhere = [NetworkPoint("onnx", "small", "f", 0.2, 0.25, "another-run")]
    notes = {}
    for name, p in (("plain", plain), ("learnt", plain.with_networks(learnt))):
        p.save(predictor_path(results, "local"))
        (table,) = write_report([run_id], results, tmp_path / f"{name}.md").analysis.predictions
        notes[name] = table.note
    plain.with_networks(elsewhere).save(predictor_path(results, "local"))
    (table,) = write_report([run_id], results, tmp_path / "else.md").analysis.predictions
    assert "the predictor on kernel models only" in notes["plain"]
    assert "network stage on 1 of them, so those are no test of it" in notes["learnt"]
    assert "the predictor on kernel models and other runs' networks only" in table.note


def test_a_damaged_predictor_is_a_note_and_the_report_is_still_written(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_run(results, "run-a", "devA", 1)
    path = predictor_path(results, "devA")
    path.parent.mkdir(parents=True)
    damaged = {"kind": FILE_KIND, "version": 1, "fingerprint": {}, "formats": []}
    path.write_bytes(gzip.compress(json.dumps(damaged).encode()))
    for name in ("report.md", "report.html"):
        result = write_report(["run-a"], results, tmp_path / name)
        assert not result.analysis.predictions
        (note,) = [n for n in result.analysis.notes if "predictor" in n]
        assert "devA" in note and str(path) in note and "formats" in note
        assert "formats: expected a JSON object" in result.path.read_text(encoding="utf-8")


def test_a_device_name_too_long_for_a_file_name(tmp_path: Path) -> None:
    # imported rows may name a device anything; two long names alike up to the limit too
    results = tmp_path / "results"
    long_a, long_b = "d" * 300, "d" * 299 + "e"
    write_run(results, "run-a", long_a, 1)
    write_run(results, "run-b", long_b, 2)
    (results / PREDICTORS_DIR).mkdir()  # another device's predictor is there
    paths = [predictor_path(results, d) for d in (long_a, long_b)]
    assert paths[0] != paths[1] and all(len(p.name.encode()) <= NAME_MAX for p in paths)
    result = write_report(["run-a", "run-b"], results, tmp_path / "report.md")
    names = [p.name for p in result.images]
    assert len(set(names)) == len(names) and all(len(n.encode()) <= NAME_MAX for n in names)
    assert all(p.is_file() for p in result.images)
    assert write_report(["run-a", "run-b"], results, tmp_path / "report.html").path.is_file()
