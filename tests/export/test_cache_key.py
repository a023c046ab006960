"""The cache key covers what writes the bytes: the builder's own source (an edited
``module:function`` or seed architecture is exported again) and every package that writes them
(exporters, onnxruntime and ai-edge-quantizer for the compressed variants)."""

from __future__ import annotations

import errno
import os
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from benchharness.errors import ExportError
from benchharness.export import cache, pipeline
from benchharness.zoo.registry import ModelSpec

MODULE = "bh_cache_key_user_model"
SOURCE = """
from torch import nn


def net(num_classes=10):
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, num_classes),
    )
"""


@pytest.fixture
def user_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    path = src / f"{MODULE}.py"
    path.write_text(textwrap.dedent(SOURCE))
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    return path


def _spec() -> ModelSpec:
    return ModelSpec(MODULE, "user", f"{MODULE}:net", (1, 3, 32, 32), 10)


def test_edited_builder_source_is_exported_again(user_model: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    (first,) = pipeline.export_model(_spec(), ["onnx"], root=root)
    assert first.entry is not None and not first.entry.cached, first.error
    (same,) = pipeline.export_model(_spec(), ["onnx"], root=root)
    assert same.entry is not None and same.entry.cached  # unchanged source: a hit
    assert same.entry.path == first.entry.path

    user_model.write_text(user_model.read_text().replace("Conv2d(3, 4,", "Conv2d(3, 8,")
                          .replace("Linear(4,", "Linear(8,"))  # fmt: skip
    sys.modules.pop(MODULE, None)  # a fresh process would import the edited file
    (edited,) = pipeline.export_model(_spec(), ["onnx"], root=root)
    assert edited.entry is not None and not edited.entry.cached, "the old artifact was reused"
    assert edited.entry.path != first.entry.path
    assert edited.entry.sha256 != first.entry.sha256


def test_builder_fingerprints() -> None:
    seeds = cache.builder_fingerprint("benchharness.zoo.seeds:cnn_gpt")
    assert seeds is not None and seeds.startswith("sha256:")
    source = Path(__file__).parents[2] / "benchharness" / "zoo" / "seeds.py"
    import hashlib

    assert seeds == "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()
    # an installed package is pinned by its version, which the key carries already
    tv = cache.builder_fingerprint("torchvision.models:mobilenet_v2")
    assert tv == f"torchvision=={metadata.version('torchvision')}"
    assert cache.builder_fingerprint("no_such_module_anywhere:f") is None


def test_every_package_that_writes_bytes_is_in_the_key() -> None:
    versions = cache.exporter_versions()
    for pkg in ("torch", "onnx", "onnxscript", "litert-torch", "litert-converter",
                "onnxruntime", "ai-edge-quantizer"):  # fmt: skip
        assert pkg in versions, pkg


def test_a_cache_file_that_cannot_be_written_is_an_export_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache, "write_text_atomic", full_disk)
    with pytest.raises(ExportError, match=r"cannot write .*No space left.*BENCH_CACHE_DIR"):
        cache.atomic_write_text(tmp_path / "m" / "m-0.onnx.json", "{}")


def test_cache_files_are_written_whole(tmp_path: Path) -> None:
    side = tmp_path / "m" / "m-0.onnx.json"
    cache.atomic_write_text(side, '{"sha256": "x"}')
    cache.atomic_write_text(side, '{"sha256": "y"}')
    assert side.read_text(encoding="utf-8") == '{"sha256": "y"}'
    assert [p.name for p in side.parent.iterdir()] == [side.name], "no temporary file is left"


def test_the_exported_weights_are_in_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seeded rule (its source included) or the builder's own weights: a changed rule, or
    --keep-weights, exports again."""
    import dataclasses

    from benchharness.zoo import init_weights

    spec = _spec()
    seeded = cache.cache_key(pipeline.key_fields(spec, "onnx", "fp32"))
    kept = dataclasses.replace(spec, keep_weights=True)
    assert cache.cache_key(pipeline.key_fields(kept, "onnx", "fp32")) != seeded
    monkeypatch.setattr(init_weights, "source_digest", lambda: "an-edited-rule")
    assert cache.cache_key(pipeline.key_fields(spec, "onnx", "fp32")) != seeded


def test_a_new_tolerance_verifies_a_variant_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached variant records its verdict against its precision's tolerance; FP32's key leaves
    the tolerance out, so FP32 artifacts outlive a change of it."""
    from benchharness.export import verify

    spec = _spec()
    fp16 = cache.cache_key(pipeline.key_fields(spec, "onnx", "fp16"))
    fp32 = cache.cache_key(pipeline.key_fields(spec, "onnx", "fp32"))
    monkeypatch.setitem(verify.TOLERANCES, "fp16", (0.0, 0.5))
    monkeypatch.setitem(verify.TOLERANCES, "fp32", (0.0, 0.5))
    assert cache.cache_key(pipeline.key_fields(spec, "onnx", "fp16")) != fp16
    assert cache.cache_key(pipeline.key_fields(spec, "onnx", "fp32")) == fp32
