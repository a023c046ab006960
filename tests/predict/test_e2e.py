"""End to end on this host: a tiny predictor built through `bench run`, then `bench predict`.

A few small kernel models and one fusion pair are exported and measured on the local device
with the real runners (quick method, short minimum time), the predictor is fitted and saved, and
the CLI predicts a tiny CNN from it. Assertions are about structure and plausibility (finite,
positive, every node accounted for, the fingerprint of this host), never about accuracy, which
depends on this machine's speed and load.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from benchharness.api import RunRequest, run
from benchharness.errors import PredictorError
from benchharness.plan.options import Method, RunOptions
from benchharness.predict.build import (
    BUILD_FILE,
    BuildOutcome,
    BuildRequest,
    _check_merged,
    build_predictor,
)
from benchharness.predict.predictor import Predictor, fingerprint_of_rows
from benchharness.predict.runtime_view import KERNELS_INFERRED, KERNELS_READ
from benchharness.predict.selection import KernelModel, PairModel, Plan
from benchharness.results.store import RunStore

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(85)

TINY = "tests.support.tiny:tiny_cnn"
ROOT = Path(__file__).resolve().parents[2]
#: A few blocks of each kind the tiny CNN has, on small inputs (exports of a few seconds).
PLAN = Plan(
    models=[
        KernelModel(
            8,
            16,
            (
                {"t": "conv", "cout": 16, "k": 3, "s": 1, "g": 1, "act": "relu"},
                {"t": "conv", "cout": 8, "k": 1, "s": 1, "g": 1, "act": "relu6"},
                {"t": "dw", "k": 3, "s": 2, "act": "none"},
                {"t": "fc", "cout": 10, "act": "none"},
            ),
            "random",
        ),
        KernelModel(
            16,
            8,
            (
                {"t": "conv", "cout": 16, "k": 1, "s": 1, "g": 1, "act": "relu6"},
                {"t": "dw", "k": 3, "s": 1, "act": "relu"},
                {"t": "conv", "cout": 32, "k": 3, "s": 2, "g": 1, "act": "none"},
            ),
            "resnet",
        ),
    ],
    pairs=[
        PairModel(("conv",), 8, 16),
        PairModel(("relu",), 8, 16),
        PairModel(("conv", "relu"), 8, 16),
    ],
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuildOutcome:
    results = tmp_path_factory.mktemp("results")
    req = BuildRequest(
        results_dir=results, plan=PLAN.to_json(), refine=False, min_s=0.2, warmup_min_s=0.2
    )
    return build_predictor(req)


def _cli(*args: str) -> tuple[int, str, str]:
    """``bench ARGS`` as a user runs it: a subprocess (the console writes to the real stdout)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchharness.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    return proc.returncode, proc.stdout, proc.stderr


def _json(text: str) -> Any:
    return json.loads(text[text.index("{") :])


def test_the_build_is_a_run_folder_and_a_predictor(built: BuildOutcome) -> None:
    p = Predictor.load(built.path)
    assert built.path.name == "local.json.gz" and built.path.parent.name == "predictors"
    run = built.path.parent.parent / built.run_ids[0]
    state = json.loads((run / BUILD_FILE).read_text())
    assert state["rounds"][0]["run_id"] == built.run_ids[0]
    assert (run / "runs.csv").exists() and (run / "predictor.json.gz").exists()
    fp = p.fingerprint
    assert fp["device"] == "local" and fp["runner"] == "python" and fp["threads"]
    assert fp["runtimes"]["onnx"]["version"] == metadata.version("onnxruntime")
    assert fp["runtimes"]["tflite"]["version"] == metadata.version("ai-edge-litert")
    assert set(p.formats) == {"onnx", "tflite"}
    for fmt, m in p.formats.items():
        keys = set(m.regressors)
        assert any(k.startswith(("Conv", "CONV_2D")) for k in keys), (fmt, keys)
        assert all(s.time_us >= 0 for s in p.samples)
        # one pair measured: conv, relu and the two in sequence
        (pair,) = m.pairs
        assert (pair.first, pair.second) == ("conv", "relu")
        assert min(pair.t1, pair.t2, pair.t12) >= 0  # LiteRT rounds a tiny op down to 0 us
    # ONNX Runtime runs a Conv and the ReLU after it as one kernel, whatever the machine's speed
    joined, chances = p.formats["onnx"].evidence.down[("Conv", "Relu", "tail")]
    assert chances > 0 and joined == chances


def test_predict_cli_on_a_model_it_never_saw(built: BuildOutcome) -> None:
    results = str(built.path.parent.parent)
    code, out, err = _cli(
        "predict",
        "--models",
        TINY,
        "--input-shape",
        "1x3x32x32",
        "--results-dir",
        results,
        "--ops",
        "--json",
    )
    assert code == 0, err
    preds = _json(out)["predictions"]
    assert {p["format"] for p in preds} == {"onnx", "tflite"}
    p = Predictor.load(built.path)
    for pred in preds:
        assert (
            pred["error"] is None
            and math.isfinite(pred["predicted_ms"])
            and pred["predicted_ms"] > 0
        )
        kernel_ms = sum(k["us"] for k in pred["kernels"]) / 1e3
        offset_ms = p.formats[pred["format"]].calibration.offset_us / 1e3
        assert pred["predicted_ms"] == pytest.approx(max(kernel_ms + offset_ms, 0.0))
        nodes = [n for k in pred["kernels"] for n in k["nodes"]]
        assert len(nodes) == len(set(nodes))  # no graph node in two kernels
        # two kernel models are too few to score five folds: no band, and the answer says so
        assert p.formats[pred["format"]].band is None
        assert pred["low_ms"] is None and pred["high_ms"] is None
    # the predictor was built on this host: ONNX Runtime's own graph gave the onnx kernels
    assert {p["format"]: p["kernels_from"] for p in preds} == {
        "onnx": KERNELS_READ,
        "tflite": KERNELS_INFERRED,
    }


def test_a_predictor_of_another_runtime_is_refused(built: BuildOutcome, tmp_path: Path) -> None:
    p = Predictor.load(built.path)
    p.fingerprint["runtimes"]["onnx"]["version"] = "0.0.1"
    other = tmp_path / "other.json.gz"
    p.save(other)
    args = [
        "predict",
        "--models",
        TINY,
        "--input-shape",
        "1x3x32x32",
        "--formats",
        "onnx",
        "--predictor",
        str(other),
        "--results-dir",
        str(tmp_path),
        "--json",
    ]
    code, _, err = _cli(*args)
    assert code == 1 and "PredictorError" in err and "0.0.1" in err
    code, out, _ = _cli(*args, "--force")
    forced = _json(out)["predictions"][0]
    assert code == 0 and forced["predicted_ms"] > 0
    # forced past another runtime version, this host's graph is not that runtime's: inferred
    assert forced["kernels_from"] == KERNELS_INFERRED


def test_resume_finishes_without_measuring_again(built: BuildOutcome) -> None:
    results = built.path.parent.parent
    again = build_predictor(BuildRequest(results_dir=results, resume=built.run_ids[0]))
    assert again.run_ids == built.run_ids
    assert len(again.predictor.samples) == len(Predictor.load(built.path).samples)


#: A kernel model the first build did not measure, for a second build to merge with it.
OTHER = KernelModel(
    8,
    8,
    ({"t": "conv", "cout": 24, "k": 1, "s": 1, "g": 1, "act": "relu"},),
    "random",
)


def test_a_second_build_fits_on_both_builds_kernel_models(built: BuildOutcome) -> None:
    results = built.path.parent.parent
    req = BuildRequest(
        results_dir=results,
        plan=Plan(models=[OTHER]).to_json(),
        refine=False,
        min_s=0.2,
        warmup_min_s=0.2,
        output=results / "predictors" / "merged.json.gz",
        networks=("none",),
        merge=(built.run_ids[0],),
    )
    merged = build_predictor(req)
    first = Predictor.load(built.path)
    models = {s.model for s in merged.predictor.samples}
    assert OTHER.name in models
    assert {s.model for s in first.samples} <= models
    assert OTHER.name not in {s.model for s in first.samples}
    assert merged.predictor.build["merged"] == {
        "builds": [built.run_ids[0]],
        "runs": built.run_ids,
    }
    # the same refit from the command line says which build it merged
    code, out, err = _cli(
        "predictor", "build", "--resume", merged.run_ids[0], "--merge", built.run_ids[0],
        "--networks", "none", "-o", str(results / "merged-cli.json.gz"),
        "--results-dir", str(results),
    )  # fmt: skip
    assert code == 0, err
    assert f"with the kernel models of build {built.run_ids[0]}" in " ".join(out.split())
    # refitting the merged build without the merge leaves its own kernel model alone
    alone = build_predictor(
        BuildRequest(
            results_dir=results, resume=merged.run_ids[0], output=results / "alone.json.gz"
        )
    )
    assert {s.model for s in alone.predictor.samples} == {OTHER.name}


def test_a_build_cannot_merge_itself_or_an_unfinished_build(
    built: BuildOutcome, tmp_path: Path
) -> None:
    results = built.path.parent.parent
    me = built.run_ids[0]
    code, _, err = _cli(
        "predictor", "build", "--resume", me, "--merge", me, "--results-dir", str(results)
    )
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("PredictorError: --merge ")
    # a copy of the build's folder without its build record: a run, but no finished build
    shutil.copytree(results / me, tmp_path / me)
    (tmp_path / me / BUILD_FILE).unlink()
    stages: list[str] = []
    req = BuildRequest(results_dir=tmp_path, plan=Plan(models=[OTHER]).to_json(), merge=(me,))
    with pytest.raises(PredictorError, match="not the first round of a finished"):
        build_predictor(req, stage=stages.append)
    assert not any(s.startswith("round") for s in stages)  # refused before measuring


def test_kernel_models_of_another_setup_are_not_merged(built: BuildOutcome) -> None:
    results = built.path.parent.parent
    store = RunStore.open(results, built.run_ids[0])
    fp = fingerprint_of_rows(store.runs)
    _check_merged(fp, [store], ("onnx", "tflite"))  # its own setup: accepted
    with pytest.raises(PredictorError, match="threads"):
        _check_merged({**fp, "threads": 97}, [store], ("onnx",))


def test_eval_on_an_outside_model(built: BuildOutcome) -> None:
    results = built.path.parent.parent
    measured = run(
        RunRequest(
            models=TINY,
            input_shape="1x3x32x32",
            options=RunOptions(method=Method(quick=True, min_s=0.2, warmup_min_s=0.1)),
            results_dir=results,
        )
    )
    code, out, err = _cli(
        "predictor",
        "eval",
        "--models",
        "none",
        "--outside",
        TINY,
        "--run",
        measured.run_id,
        "--results-dir",
        str(results),
        "--json",
    )
    assert code == 0, err
    data = _json(out)
    assert {m["model"] for m in data["models"]} == {"tiny_cnn"}
    scores = {(s["format"], s["method"]): s for s in data["scores"]}
    assert {s["set"] for s in data["scores"]} == {"outside models"}
    assert {f for f, _ in scores} == {"onnx", "tflite"}
    # this host runs the device's ONNX Runtime on its CPU: the onnx kernels were read from the
    # runtime's graph, and the evaluation scores the inferred kernels beside them
    kernels_from = {m["format"]: m["kernels_from"] for m in data["models"]}
    assert kernels_from == {"onnx": KERNELS_READ, "tflite": KERNELS_INFERRED}
    assert ("onnx", "predictor, kernels inferred") in scores
    assert ("tflite", "predictor, kernels inferred") not in scores
    for (_, method), s in scores.items():
        # no zoo model was measured, so the zoo's MACs lines have nothing to be fitted on
        assert s["n"] == (0 if "zoo" in method else 1)
        assert s["n"] == 0 or 0.0 <= s["within_10"] <= 1.0
