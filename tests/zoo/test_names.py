"""Every distinct model gets its own name: files with one stem, builders with one function name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchharness.zoo.registry import ArtifactRef, ModelSpec, resolve_models


def test_two_files_with_one_stem_keep_two_names(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "net.onnx").write_bytes(b"x")
    refs = resolve_models(f"{tmp_path}/a/net.onnx,{tmp_path}/b/net.onnx")
    assert all(isinstance(r, ArtifactRef) for r in refs)
    assert [r.name for r in refs] == ["a/net", "b/net"]
    # one file named twice is one model
    assert len(resolve_models(f"{tmp_path}/a/net.onnx,{tmp_path}/a/net.onnx")) == 1
    # a stem alone stays as it was
    assert [r.name for r in resolve_models(f"{tmp_path}/a/net.onnx")] == ["net"]


def test_two_builders_with_one_function_name_keep_two_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("first_nets", "second_nets"):
        (tmp_path / f"{module}.py").write_text(
            "from torch import nn\n\ndef build():\n    return nn.Flatten()\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    refs = resolve_models("first_nets:build,second_nets:build")
    assert all(isinstance(r, ModelSpec) for r in refs)
    assert [r.name for r in refs] == ["first_nets:build", "second_nets:build"]
    assert [r.name for r in resolve_models("first_nets:build")] == ["build"]
    for module in ("first_nets", "second_nets"):
        sys.modules.pop(module, None)
