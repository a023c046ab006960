from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from benchharness.errors import ExportError
from benchharness.export import cache, convert, pipeline, verify
from benchharness.zoo.registry import ModelSpec


def test_both_exports_match_pytorch_within_tolerance(tiny_artifacts: dict) -> None:
    for fmt, entry in tiny_artifacts.items():
        assert entry.path.suffix == f".{fmt}"
        assert entry.max_abs_err is not None and entry.tolerance is not None
        assert entry.max_abs_err <= entry.tolerance
        assert entry.sha256 == cache.sha256_file(entry.path)


def test_exported_files_run_and_agree_with_each_other(tiny_artifacts: dict) -> None:
    x = pipeline.verify_input((1, 3, 32, 32))
    a = verify.run_onnx(tiny_artifacts["onnx"].path, x)
    b = verify.run_tflite(tiny_artifacts["tflite"].path, x)
    assert a.shape == b.reshape(a.shape).shape == (1, 10)
    np.testing.assert_allclose(a, b.reshape(a.shape), atol=1e-4)


def test_second_export_is_a_cache_hit_without_converting(
    tiny_spec: ModelSpec, tiny_artifacts: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: object) -> None:
        raise AssertionError("a cached artifact must not be converted again")

    monkeypatch.setattr(convert, "to_onnx", boom)
    monkeypatch.setattr(convert, "to_tflite", boom)
    monkeypatch.setattr(ModelSpec, "build", boom)
    outcomes = pipeline.export_model(tiny_spec, ["onnx", "tflite"])
    assert all(o.entry is not None and o.entry.cached for o in outcomes)
    assert {o.entry.path for o in outcomes if o.entry} == {e.path for e in tiny_artifacts.values()}


def test_cache_key_follows_shape_format_precision_and_exporter_versions(
    tiny_spec: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = cache.cache_key(pipeline.key_fields(tiny_spec, "onnx", "fp32"))
    bigger = tiny_spec.with_input_shape((1, 3, 64, 64))
    assert cache.cache_key(pipeline.key_fields(bigger, "onnx", "fp32")) != base
    assert cache.cache_key(pipeline.key_fields(tiny_spec, "tflite", "fp32")) != base
    assert cache.cache_key(pipeline.key_fields(tiny_spec, "onnx", "int8")) != base
    monkeypatch.setattr(cache, "exporter_versions", lambda: {"torch": "0.0-other"})
    assert cache.cache_key(pipeline.key_fields(tiny_spec, "onnx", "fp32")) != base


def test_damaged_cached_file_is_exported_again(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    (first,) = pipeline.export_model(tiny_spec, ["onnx"], root=tmp_path)
    assert first.entry is not None and not first.entry.cached
    first.entry.path.write_bytes(b"damaged")
    (again,) = pipeline.export_model(tiny_spec, ["onnx"], root=tmp_path)
    assert again.entry is not None and not again.entry.cached
    assert again.entry.sha256 == first.entry.sha256


def test_a_failing_builder_is_an_outcome_not_an_exception(tmp_path: Path) -> None:
    spec = ModelSpec("broken", "user", "tests.support.tiny:broken_builder", (1, 3, 8, 8), 10)
    outcomes = pipeline.export_model(spec, ["onnx", "tflite"], root=tmp_path)
    assert [o.entry for o in outcomes] == [None, None]
    assert all("broken_builder" in str(o.error) for o in outcomes)


def test_unknown_format_is_refused(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    (outcome,) = pipeline.export_model(tiny_spec, ["pt"], root=tmp_path)
    assert isinstance(outcome.error, ExportError)
    assert "unknown format" in str(outcome.error)


def test_converter_noise_goes_to_the_log(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import os

    log = tmp_path / "export.log"
    with convert.quiet_fds(log):
        os.write(1, b"converter chatter\n")
        os.write(2, b"more chatter\n")
    assert "chatter" not in capfd.readouterr().out
    assert "converter chatter" in log.read_text()


def test_tolerance_scales_with_output_magnitude() -> None:
    small = verify.tolerance(np.array([1e-3]))
    large = verify.tolerance(np.array([100.0]))
    assert small < large
    assert large == pytest.approx(verify.FP32_ATOL + verify.FP32_RTOL * 100)


def test_spec_replace_keeps_kwargs(tiny_spec: ModelSpec) -> None:
    other = dataclasses.replace(tiny_spec, kwargs={"num_classes": 3})
    assert other.kwargs == {"num_classes": 3}


def test_default_cache_is_the_users_xdg_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BENCH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "benchharness" / "exports"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/invalid")  # the spec: ignore it
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "benchharness" / "exports"
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"


def test_cache_key_follows_the_builders_own_source(
    tiny_spec: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "bh_key_builder.py"
    module.write_text("def build():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = dataclasses.replace(tiny_spec, builder="bh_key_builder:build")
    first = cache.cache_key(pipeline.key_fields(spec, "onnx", "fp32"))
    module.write_text("def build():\n    return 2  # another model, same name and shape\n")
    assert cache.cache_key(pipeline.key_fields(spec, "onnx", "fp32")) != first
    # a package's builders are covered by its version, which is in the key already
    assert str(cache.builder_fingerprint("torchvision.models:resnet18")).startswith("torchvision==")
    assert str(cache.builder_fingerprint("tests.support.tiny:tiny_cnn")).startswith("sha256:")


def test_one_key_is_exported_once_when_two_exports_race(
    tiny_spec: ModelSpec, tiny_artifacts: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def slow_copy(model: object, example: object, out: Path) -> None:
        calls.append(out)
        time.sleep(0.3)  # makes the two exports overlap; the assertion holds either way
        shutil.copyfile(tiny_artifacts["onnx"].path, out)

    monkeypatch.setattr(convert, "to_onnx", slow_copy)
    outcomes: list[pipeline.ExportOutcome] = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.extend(
                pipeline.export_model(tiny_spec, ["onnx"], root=tmp_path)
            )
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert [o.entry is not None for o in outcomes] == [True, True]
    assert sorted(o.entry.cached for o in outcomes if o.entry) == [False, True]
