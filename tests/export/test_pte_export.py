"""The pte format: an ExecuTorch program lowered through XNNPACK, verified, cached with its
ETRecord, naming the operators that stayed on ExecuTorch's own kernels."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from benchharness.errors import ExportError, ModelFileError
from benchharness.export import cache, pipeline, pte, verify
from benchharness.export.cache import CacheEntry
from benchharness.ondevice import pte_file
from benchharness.zoo.registry import ModelSpec

MIXED = ModelSpec(
    name="tiny_mixed", source="user", builder="tests.support.tiny_pte:tiny_mixed",
    input_shape=(1, 3, 32, 32), classes=4,
)  # fmt: skip


def export(spec: ModelSpec, precision: str = "fp32", root: Path | None = None) -> CacheEntry:
    (outcome,) = pipeline.export_model(spec, ["pte"], precision=precision, root=root)
    assert outcome.entry is not None, outcome.error
    return outcome.entry


@pytest.fixture(scope="module")
def pte_entry(tiny_spec: ModelSpec) -> CacheEntry:
    return export(tiny_spec)


@pytest.fixture(scope="module")
def mixed_entry() -> CacheEntry:
    return export(MIXED)


def test_pte_export_is_verified_against_torch_and_keeps_its_etrecord(
    tiny_spec: ModelSpec, pte_entry: CacheEntry
) -> None:
    assert pte_entry.path.suffix == ".pte" and pte_entry.format == "pte"
    assert pte.etrecord_path(pte_entry.path).is_file()
    assert pte_entry.max_abs_err is not None and pte_entry.tolerance is not None
    assert pte_entry.max_abs_err <= pte_entry.tolerance
    assert pte_entry.sha256 == cache.sha256_file(pte_entry.path)
    x = pipeline.verify_input(tiny_spec.input_shape)
    with torch.no_grad():
        expected = tiny_spec.build()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(verify.run_pte(pte_entry.path, x), expected, rtol=1e-4, atol=1e-6)


def test_a_fully_lowered_program_is_all_xnnpack(pte_entry: CacheEntry) -> None:
    summary = pte_file.summarize_file(str(pte_entry.path))
    assert summary.methods == ["forward"]
    assert summary.delegates == ["XnnpackBackend"]
    assert summary.portable_operators == []
    assert summary.provider == "XNNPACK"


def test_operators_xnnpack_cannot_take_stay_on_portable_kernels_and_are_named(
    mixed_entry: CacheEntry,
) -> None:
    assert mixed_entry.max_abs_err is not None and mixed_entry.tolerance is not None
    assert mixed_entry.max_abs_err <= mixed_entry.tolerance
    summary = pte_file.summarize_file(str(mixed_entry.path))
    assert "aten::cumsum.out" in summary.portable_operators
    # cumsum splits the graph: XNNPACK partitions before and after it
    assert summary.delegates.count("XnnpackBackend") >= 2
    assert summary.provider == "XNNPACK+portable"


def test_second_pte_export_is_a_cache_hit(
    tiny_spec: ModelSpec, pte_entry: CacheEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a cached program must not be lowered again")

    monkeypatch.setattr(pte, "to_pte", boom)
    (outcome,) = pipeline.export_model(tiny_spec, ["pte"], root=pte_entry.path.parents[1])
    assert outcome.entry is not None and outcome.entry.cached
    assert outcome.entry.path == pte_entry.path


def test_a_program_whose_etrecord_is_gone_is_exported_again(
    tiny_spec: ModelSpec, pte_entry: CacheEntry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # only this model's folder: the shared cache beside it holds every model the suite exported
    root = tmp_path / "cache"
    shutil.copytree(pte_entry.path.parent, root / pte_entry.path.parent.name)
    copy = root / pte_entry.path.relative_to(pte_entry.path.parents[1])
    pte.etrecord_path(copy).unlink()
    asked: list[Path] = []

    def record(_model: object, _example: object, out: Path, **_kwargs: object) -> None:
        asked.append(out)
        raise ExportError("lowering asked for")

    monkeypatch.setattr(pte, "to_pte", record)
    (outcome,) = pipeline.export_model(tiny_spec, ["pte"], root=root)
    assert asked == [copy] and isinstance(outcome.error, ExportError)


def test_int8_static_quantises_with_pt2e_and_lowers_fully(tiny_spec: ModelSpec) -> None:
    entry = export(tiny_spec, "int8-static")
    assert entry.precision == "int8-static"
    assert entry.max_abs_err is not None and entry.tolerance is not None
    assert 0 < entry.max_abs_err <= entry.tolerance  # quantised: close, but not exact
    assert pte_file.summarize_file(str(entry.path)).provider == "XNNPACK"


def test_pte_is_fp32_or_int8_static_only(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    (outcome,) = pipeline.export_model(tiny_spec, ["pte"], precision="fp16", root=tmp_path)
    assert isinstance(outcome.error, ExportError)
    assert "fp32 and int8-static only" in str(outcome.error)
    assert not list(tmp_path.rglob("*.pte"))


def test_the_executorch_version_keys_pte_artifacts_only(
    tiny_spec: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    pte_key = cache.cache_key(pipeline.key_fields(tiny_spec, "pte", "fp32"))
    onnx_key = cache.cache_key(pipeline.key_fields(tiny_spec, "onnx", "fp32"))
    real = cache.exporter_versions

    def other_executorch(packages: tuple[str, ...] = cache.EXPORTER_PACKAGES) -> dict[str, str]:
        return {p: "0.0-other" for p in packages} if "executorch" in packages else real(packages)

    monkeypatch.setattr(cache, "exporter_versions", other_executorch)
    assert cache.cache_key(pipeline.key_fields(tiny_spec, "pte", "fp32")) != pte_key
    assert cache.cache_key(pipeline.key_fields(tiny_spec, "onnx", "fp32")) == onnx_key


def test_a_damaged_program_is_a_model_file_error(pte_entry: CacheEntry, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pte"
    bad.write_bytes(pte_entry.path.read_bytes()[:200])
    with pytest.raises(ModelFileError, match="cannot load"):
        verify.run_pte(bad, np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(pte_file.PteFormatError):
        pte_file.summarize_file(str(bad))
    with pytest.raises(pte_file.PteFormatError, match="identifier"):
        pte_file.summarize(b"not a program at all")


def test_a_pte_file_is_benchmarked_as_it_is(pte_entry: CacheEntry, tmp_path: Path) -> None:
    from benchharness.plan.artifacts import prepare_artifacts
    from benchharness.zoo.registry import resolve_models

    (art,) = prepare_artifacts(resolve_models(str(pte_entry.path)), ["pte"])
    assert (art.format, art.precision, art.error) == ("pte", "as-is", None)
    # its ETRecord is beside it: the graph's cost comes along
    assert art.cost["macs"] > 0 and art.cost["model_bytes"] == pte_entry.path.stat().st_size
    bad = tmp_path / "bad.pte"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="not an ExecuTorch program"):
        prepare_artifacts(resolve_models(str(bad)), ["pte"])
