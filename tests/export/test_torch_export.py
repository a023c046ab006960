"""The torch format: a ``torch.export`` program saved as .pt2, cached and verified like the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchharness.errors import ExportError, ModelFileError
from benchharness.export import convert, pipeline, verify
from benchharness.export.cache import CacheEntry
from benchharness.zoo.registry import ModelSpec


@pytest.fixture(scope="module")
def torch_entry(tiny_spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> CacheEntry:
    (outcome,) = pipeline.export_model(tiny_spec, ["torch"], root=tmp_path_factory.mktemp("pt2"))
    assert outcome.entry is not None, outcome.error
    return outcome.entry


def test_pt2_export_round_trips_and_matches_torch(
    tiny_spec: ModelSpec, torch_entry: CacheEntry
) -> None:
    assert torch_entry.path.suffix == ".pt2"
    assert torch_entry.format == "torch" and torch_entry.precision == "fp32"
    assert torch_entry.max_abs_err is not None and torch_entry.tolerance is not None
    assert torch_entry.max_abs_err <= torch_entry.tolerance
    x = pipeline.verify_input(tiny_spec.input_shape)
    with torch.no_grad():
        expected = tiny_spec.build()(torch.from_numpy(x)).numpy()
    with torch_entry.path.open("rb") as fh:
        program = torch.export.load(fh)
    with torch.inference_mode():
        loaded = program.module()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(loaded, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        verify.run_torch(torch_entry.path, x), expected, rtol=1e-5, atol=1e-6
    )


def test_second_torch_export_is_a_cache_hit(
    tiny_spec: ModelSpec, torch_entry: CacheEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: object) -> None:
        raise AssertionError("a cached artifact must not be exported again")

    monkeypatch.setattr(convert, "to_torch", boom)
    (outcome,) = pipeline.export_model(tiny_spec, ["torch"], root=torch_entry.path.parents[1])
    assert outcome.entry is not None and outcome.entry.cached
    assert outcome.entry.path == torch_entry.path


def test_torch_format_is_fp32_only(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    (outcome,) = pipeline.export_model(tiny_spec, ["torch"], precision="fp16", root=tmp_path)
    assert isinstance(outcome.error, ExportError)
    assert "fp32 only" in str(outcome.error)
    assert not list(tmp_path.rglob("*.pt2")), "no fp32 base should be exported for a refusal"


def test_a_damaged_archive_is_a_model_file_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(ModelFileError, match="cannot load"):
        verify.run_torch(bad, np.zeros((1, 3, 32, 32), np.float32))
