"""The predictor file: round trips, refusals, fingerprints, refits without a family."""

from __future__ import annotations

import gzip
import json
import os
import random
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchharness.errors import PredictorError
from benchharness.predict import predictor_file
from benchharness.predict import regress as R
from benchharness.predict.predictor import Calibration, Predictor, fingerprint_of_rows
from benchharness.predict.samples import Point
from benchharness.predict.selection import ORIGIN_PAIR
from benchharness.results.schema import RunRow
from tests.predict import synthetic as S

FP = S.FINGERPRINT


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return S.fake_predictor()


@pytest.mark.parametrize("name", ["p.json", "p.json.gz"])
def test_round_trip_predicts_the_same(predictor: Predictor, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    predictor.save(path)
    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    loaded = Predictor.load(path)
    g = S.random_model(random.Random(7))
    assert loaded.predict_graph(g).ms == predictor.predict_graph(g).ms
    assert loaded.fingerprint == FP and len(loaded.samples) == len(predictor.samples)


def test_files_that_are_not_predictors_are_refused(tmp_path: Path, predictor: Predictor) -> None:
    with pytest.raises(PredictorError, match="no predictor file"):
        Predictor.load(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text('{"kind": "something else"}')
    with pytest.raises(PredictorError, match="not a benchharness latency predictor"):
        Predictor.load(tmp_path / "x.json")
    data = predictor.to_json()
    data["version"] = 99
    (tmp_path / "new.json.gz").write_bytes(gzip.compress(json.dumps(data).encode()))
    with pytest.raises(PredictorError, match="version 99"):
        Predictor.load(tmp_path / "new.json.gz")


def test_fingerprint_differences_are_strict_or_warnings(predictor: Predictor) -> None:
    same = json.loads(json.dumps(FP))
    assert predictor.differences(same, "onnx") == []
    other = json.loads(json.dumps(FP))
    other["runtimes"]["onnx"]["version"] = "1.99.0"
    other["harness_version"] = "0.2.0"
    assert predictor.strict_differences(other, "onnx") == [
        "runtime_version: predictor onnxruntime 1.32.0, now onnxruntime 1.99.0"
    ]
    assert "harness_version: predictor 0.1.0, now 0.2.0" in predictor.differences(other, "onnx")
    # what is not known is not a difference
    assert predictor.differences({"device": "local"}, "onnx") == []


def test_fingerprint_of_rows() -> None:
    rows = [
        RunRow(status="failed", device="x"),
        RunRow(
            status="ok",
            device="local",
            format="onnx",
            cpu_model="Xeon",
            threads=2,
            runtime="onnxruntime",
            runtime_version="1.32.0",
            harness_version="0.1.0",
            stats_source="samples",
        ),
    ]
    assert fingerprint_of_rows(rows) == FP


def test_without_a_family_drops_its_kernels(predictor: Predictor) -> None:
    fold = predictor.without(["resnet"])
    assert fold.samples and all(s.origin != "resnet" for s in fold.samples)
    assert len(fold.samples) < len(predictor.samples)
    assert all(p.origin != "resnet" for p in fold.points)
    g = S.random_model(random.Random(8))
    assert fold.predict_graph(g).ms == pytest.approx(S.fake_e2e_us(g) / 1e3, rel=0.1)


def test_a_format_it_was_not_built_for_is_refused(predictor: Predictor) -> None:
    g = S.random_model(random.Random(9))
    g.format = "tflite"
    with pytest.raises(PredictorError, match="built for the formats onnx"):
        predictor.predict_graph(g)


def test_fusion_pair_models_do_not_calibrate_the_kernel_models() -> None:
    # A pair model is one or two operators in a ~5 us run: its profiled time is mostly the
    # profiler's own cost per operator (5-8x its end-to-end time on LiteRT here). Weighted by
    # relative error, twelve of them pulled a whole build's LiteRT scale to 0.37, and every
    # prediction with it (0.32-0.43x the measured zoo).
    kernels = [
        Point("tflite", f"k{i}", "resnet", sum_us=e2e, rows=40, e2e_us=e2e, macs=1, bytes=1)
        for i, e2e in enumerate(range(500, 5000, 300))
    ]
    pairs = [
        Point(
            "tflite",
            f"pair-{i}",
            ORIGIN_PAIR,
            sum_us=6.0 * e2e,
            rows=2,
            e2e_us=e2e,
            macs=1,
            bytes=1,
        )
        for i, e2e in enumerate((4.0, 5.0, 6.0, 8.0, 10.0, 12.0) * 2)
    ]
    cal = Calibration.fit(kernels + pairs)
    assert cal.n == len(kernels)
    assert cal.scale == pytest.approx(1.0, abs=0.02)
    assert cal.label(1000.0, 40) == pytest.approx(1000.0, rel=0.05)


# --- a damaged predictor file is the project's error, naming the file and the field -----------


def _write_json(path: Path, data: object, raw: dict[str, str] | None = None) -> Path:
    """``data`` as a gzip predictor file; each ``raw`` placeholder string is replaced by JSON
    text that ``json.dumps`` cannot write (``1e999``, deep nesting)."""
    text = json.dumps(data)
    for placeholder, replacement in (raw or {}).items():
        text = text.replace(json.dumps(placeholder), replacement)
    path.write_bytes(gzip.compress(text.encode()))
    return path


def _first_tree(data: dict[str, Any]) -> dict[str, list[float]]:
    """The first tree with inner nodes (a tree of a lone leaf has no children to damage)."""
    regressors = data["formats"]["onnx"]["regressors"].values()
    trees = (t for r in regressors if r["trees"] for t in r["trees"]["trees"])
    return next(t for t in trees if len(t["left"]) >= 3)


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A mutation setting the field at dotted ``path`` (``formats.onnx.evidence``)."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return mutate


def _tree_child(which: str, value: int) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        _first_tree(data)[which][0] = value

    return mutate


#: A network stage as the build writes it (predict/network_cal.py), for its damaged variants.
STAGE = {"slope": 1.05, "intercept": -0.1, "low_ms": 0.4, "high_ms": 16.0, "n": 17, "q": 0.2}

#: (case, mutation, raw JSON text for placeholders, what the message must name)
DAMAGED: list[tuple[str, Callable[[dict[str, Any]], None], dict[str, str], str]] = [
    ("version as text", _set("version", "one"), {}, "version"),
    ("version as a list", _set("version", [1]), {}, "version"),
    ("version missing", lambda d: d.pop("version"), {}, "version"),
    ("formats as a list", _set("formats", []), {}, "formats"),
    ("evidence as a list", _set("formats.onnx.evidence", []), {}, "evidence"),
    ("calibration n 1e999", _set("formats.onnx.calibration.n", "@N"), {"@N": "1e999"}, ".n"),
    ("scale NaN", _set("formats.onnx.calibration.scale", "@X"), {"@X": "NaN"}, "scale"),
    ("huge integer", _set("seed", "@X"), {"@X": "9" * 400}, "seed"),
    ("deep nesting", _set("build.x", "@X"), {"@X": "[" * 100_000 + "]" * 100_000}, "nest"),
    ("nesting in build", _set("build.x", "@X"), {"@X": "[" * 200 + "]" * 200}, "build"),
    ("sample of 3 fields", _set("samples.0", [1, 2, 3]), {}, "samples[0]"),
    ("negative time", _set("samples.0.3", -1.0), {}, "samples[0]"),
    ("long text", _set("samples.0.5", "m" * 100_000), {}, "samples[0]"),
    ("child out of range", _tree_child("left", 10**6), {}, "left[0]"),
    ("child points at itself", _tree_child("left", 0), {}, "left[0]"),
    ("child points back", _tree_child("right", 0), {}, "right[0]"),
    ("feature out of range", _tree_child("feature", 10**6), {}, "feature[0]"),
    ("linear of 2 terms", lambda d: _regressor(d).update(linear=[1.0, 2.0]), {}, "linear"),
    ("unknown term", lambda d: _regressor(d).update(terms=["macs", "bogus"]), {}, "terms[1]"),
    ("terms as text", lambda d: _regressor(d).update(terms="macs"), {}, "terms"),
    ("terms not the linear's", lambda d: _regressor(d).update(terms=["macs"]), {}, "linear"),
    ("stage slope 50", _set("formats.onnx.network", {**STAGE, "slope": 50.0}), {}, "slope"),
    (
        "stage factor overflows",
        _set("formats.onnx.network", {**STAGE, "intercept": 1e6}),
        {},
        "intercept",
    ),
    (
        "stage range inverted",
        _set("formats.onnx.network", {**STAGE, "high_ms": 0.1}),
        {},
        "high_ms",
    ),
    ("stage range from 0", _set("formats.onnx.network", {**STAGE, "low_ms": 0.0}), {}, "low_ms"),
    ("stage width NaN", _set("formats.onnx.network", {**STAGE, "q": "@X"}), {"@X": "NaN"}, ".q"),
    ("network of 3 fields", _set("networks", [["onnx", "m", "f"]]), {}, "networks[0]"),
    (
        "network negative time",
        _set("networks", [["onnx", "m", "f", -1.0, 1.0, ""]]),
        {},
        "networks[0]",
    ),
]


def _regressor(data: dict[str, Any]) -> dict[str, Any]:
    regressors: dict[str, Any] = data["formats"]["onnx"]["regressors"]
    return next(iter(regressors.values()))


@pytest.mark.parametrize(
    ("mutate", "raw", "names"), [d[1:] for d in DAMAGED], ids=[d[0] for d in DAMAGED]
)
def test_a_damaged_file_names_the_file_and_the_field(
    predictor: Predictor,
    tmp_path: Path,
    mutate: Callable[[dict[str, Any]], None],
    raw: dict[str, str],
    names: str,
) -> None:
    data = json.loads(json.dumps(predictor.to_json()))  # to_json shares the tree arrays
    mutate(data)
    path = _write_json(tmp_path / "local.json.gz", data, raw)
    with pytest.raises(PredictorError) as caught:
        Predictor.load(path)
    assert str(path) in str(caught.value) and names in str(caught.value)


def test_a_gzip_bomb_is_refused_within_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 1 << 20
    monkeypatch.setattr(predictor_file, "MAX_FILE_BYTES", limit)
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b" " * (64 << 20), compresslevel=1))
    tracemalloc.start()
    try:
        with pytest.raises(PredictorError, match="larger than"):
            Predictor.load(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit, f"{peak} bytes to refuse a gzip bomb"


def test_an_oversized_plain_file_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(predictor_file, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"kind": "x", "pad": "p" * 2000}))
    with pytest.raises(PredictorError, match="larger than"):
        Predictor.load(path)


# --- saving is atomic and its errors are the project's -----------------------------------------


def test_save_syncs_and_leaves_no_temporary_file(
    predictor: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "predictors" / "local.json.gz"
    predictor.save(path)
    assert synced, "the predictor was renamed into place before its bytes reached the disk"
    assert [p.name for p in path.parent.iterdir()] == ["local.json.gz"]


def test_save_does_not_trip_over_a_stale_temporary_name(
    predictor: Predictor, tmp_path: Path
) -> None:
    # a fixed temporary name is taken by whatever an earlier crash or another writer left there
    path = tmp_path / "local.json.gz"
    (tmp_path / f".{path.name}.tmp").mkdir()
    predictor.save(path)
    assert Predictor.load(path).fingerprint == FP


@pytest.mark.parametrize("name", ["p.json", "p.json.gz"])
def test_a_save_that_cannot_write_is_the_projects_error(
    predictor: Predictor, tmp_path: Path, name: str
) -> None:
    (tmp_path / "taken").write_text("a file where the folder should be")
    with pytest.raises(PredictorError, match="cannot write the predictor"):
        predictor.save(tmp_path / "taken" / name)


def test_regressors_saved_before_their_terms_were_named_still_load(
    predictor: Predictor, tmp_path: Path
) -> None:
    data = json.loads(json.dumps(predictor.to_json()))
    for reg in data["formats"]["onnx"]["regressors"].values():
        reg.pop("terms")
        reg["linear"] = reg["linear"][:6]  # as many as the five old terms and the constant
    loaded = Predictor.load(_write_json(tmp_path / "old.json.gz", data))
    assert all(r.terms == R.LEGACY_TERMS for r in loaded.formats["onnx"].regressors.values())
    assert loaded.predict_graph(S.random_model(random.Random(3))).ms > 0


def test_a_version_1_file_from_before_the_network_stage_still_predicts(
    predictor: Predictor, tmp_path: Path
) -> None:
    data = json.loads(json.dumps(predictor.to_json()))
    data["version"] = 1
    data.pop("networks")
    path = _write_json(tmp_path / "old.json.gz", data)
    loaded = Predictor.load(path)
    g = S.random_model(random.Random(12))
    assert loaded.networks == [] and loaded.formats["onnx"].network is None
    assert loaded.predict_graph(g).ms == predictor.predict_graph(g).ms
