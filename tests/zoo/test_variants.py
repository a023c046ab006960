"""Resolution and width sweeps: names, builders, input shapes, and what cannot be built."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.errors import UnknownModelError, UsageError
from benchharness.export import pipeline
from benchharness.zoo import variants
from benchharness.zoo.registry import ArtifactRef, ModelSpec, load_zoo


@pytest.fixture(scope="module")
def zoo() -> dict[str, ModelSpec]:
    return load_zoo()


def test_resolution_variant_has_its_own_name_and_shape(zoo: dict[str, ModelSpec]) -> None:
    spec = variants.with_resolution(zoo["resnet18"], 160)
    assert spec.name == "resnet18@160"
    assert spec.input_shape == (1, 3, 160, 160)
    assert spec.builder == zoo["resnet18"].builder


def test_width_through_the_builder_keyword(zoo: dict[str, ModelSpec]) -> None:
    half = variants.with_width(zoo["student_net"], 0.5)
    assert half.name == "student_net@w0.5"
    assert half.kwargs["width_mult"] == 0.5
    full = variants.with_width(zoo["student_net"], 1.0)
    assert sum(p.numel() for p in half.build().parameters()) < sum(
        p.numel() for p in full.build().parameters()
    )
    assert variants.with_width(zoo["mobilenet_v2"], 0.75).kwargs["width_mult"] == 0.75


def test_width_through_a_family_of_builders(zoo: dict[str, ModelSpec]) -> None:
    shuffle = variants.with_width(zoo["shufflenet_v2_x1_0"], 0.5)
    assert shuffle.builder == "torchvision.models:shufflenet_v2_x0_5"
    ghost = variants.with_width(zoo["ghostnet_100"], 1.3)
    assert ghost.kwargs["model_name"] == "ghostnet_130"
    assert ghost.name == "ghostnet_100@w1.3"


def test_a_width_the_family_lacks_fails_with_the_reason(zoo: dict[str, ModelSpec]) -> None:
    spec = variants.with_width(zoo["shufflenet_v2_x1_0"], 0.75)
    assert variants.is_unavailable(spec)
    with pytest.raises(UnknownModelError, match=r"0\.5, 1, 1\.5, 2"):
        spec.build()


def test_a_model_without_a_multiplier_only_has_width_one(zoo: dict[str, ModelSpec]) -> None:
    assert not variants.has_width(zoo["resnet18"])
    same = variants.with_width(zoo["resnet18"], 1.0)
    assert same.name == "resnet18@w1.0" and same.builder == zoo["resnet18"].builder
    with pytest.raises(UnknownModelError, match="no width multiplier"):
        variants.with_width(zoo["resnet18"], 0.5).build()


def test_expand_is_model_then_width_then_resolution(
    zoo: dict[str, ModelSpec], tmp_path: Path
) -> None:
    file_ref = ArtifactRef(path=tmp_path / "m.onnx", format="onnx")
    out = variants.expand_variants(
        [zoo["student_net"], file_ref], resolutions=(64, 96), widths=(0.5, 1.0)
    )
    names = [r.name for r in out]
    assert names == [
        "student_net@w0.5@64", "student_net@w0.5@96", "student_net@w1.0@64",
        "student_net@w1.0@96", "m",
    ]  # fmt: skip
    assert isinstance(out[0], ModelSpec) and out[0].input_shape == (1, 3, 64, 64)
    assert variants.expand_variants([zoo["resnet18"]]) == [zoo["resnet18"]]


def test_an_unavailable_variant_becomes_a_failed_export_per_resolution(
    zoo: dict[str, ModelSpec], tmp_path: Path
) -> None:
    out = variants.expand_variants([zoo["cnn_gpt"]], resolutions=(32,), widths=(0.5,))
    (spec,) = out
    assert isinstance(spec, ModelSpec) and spec.name == "cnn_gpt@w0.5@32"
    (outcome,) = pipeline.export_model(spec, ["onnx"], root=tmp_path)
    assert outcome.entry is None and "no width multiplier" in str(outcome.error)


def test_a_resolution_the_model_cannot_take_is_a_failed_export(tmp_path: Path) -> None:
    # flatten -> Linear(256) without adaptive pooling: only its own 8x8 input fits the linear
    fixed = ModelSpec("fixed", "user", "tests.plan.test_fit:one_big_layer", (1, 3, 8, 8))
    (outcome,) = pipeline.export_model(variants.with_resolution(fixed, 16), ["onnx"], root=tmp_path)
    assert outcome.entry is None
    assert "fixed@16 does not run on input 1x3x16x16" in str(outcome.error)


def test_tiny_model_exports_at_another_resolution(tmp_path: Path) -> None:
    tiny = ModelSpec("tiny_cnn", "user", "tests.support.tiny:tiny_cnn", (1, 3, 32, 32), 10)
    (outcome,) = pipeline.export_model(variants.with_resolution(tiny, 48), ["onnx"], root=tmp_path)
    assert outcome.entry is not None, outcome.error
    assert outcome.entry.path.parent.name == "tiny_cnn@48"


def test_sweep_values_parse() -> None:
    assert variants.parse_resolutions("128, 160,160") == (128, 160)
    assert variants.parse_widths("0.5,1") == (0.5, 1.0)
    for bad in ("abc", "4", ""):
        with pytest.raises(UsageError):
            variants.parse_resolutions(bad)
    with pytest.raises(UsageError):
        variants.parse_widths("0,1")
