"""The weights models are exported with: seeded, no parameter zero or an identity, batch norms
with measured statistics; the builder's own weights only when asked for."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import pytest
import torch
from torch import Tensor, nn

from benchharness.errors import UnknownModelError
from benchharness.zoo import init_weights
from benchharness.zoo.registry import ModelSpec, resolve_models
from tests.cost.zero_init import ZeroInitResidual

ZERO_INIT = "tests.cost.zero_init:zero_init_residual"
SHAPE = (1, 3, 32, 32)
M = TypeVar("M", bound=nn.Module)


def _spec(
    builder: str = ZERO_INIT, *, keep_weights: bool = False, kwargs: dict | None = None
) -> ModelSpec:
    spec = ModelSpec("zero_init_residual", "user", builder, SHAPE, 10, kwargs=kwargs or {})
    return dataclasses.replace(spec, keep_weights=keep_weights)


class LayerScaled(nn.Module):
    """A transformer-style block: a layer norm, and a branch scaled by a gamma of 1e-6."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.GroupNorm(2, 8)
        self.gamma = nn.Parameter(torch.full((8,), 1e-6))
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return self.fc((x + self.gamma[:, None, None] * self.norm(x)).mean((2, 3)))


def layer_scaled(num_classes: int = 10) -> nn.Module:
    return LayerScaled(num_classes)


class FixedBatch(nn.Module):
    """A model that runs on a batch of one only: its statistics cannot be measured."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 32 * 32, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.bn(self.conv(x)).reshape(1, -1))


def fixed_batch(num_classes: int = 10) -> nn.Module:
    return FixedBatch(num_classes)


def _built(spec: ModelSpec, kind: type[M]) -> M:
    model = spec.build()
    assert isinstance(model, kind)
    return model


def _stats(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    assert bn.running_mean is not None and bn.running_var is not None
    return bn.running_mean, bn.running_var


def test_no_parameter_is_zero_and_no_norm_is_an_identity() -> None:
    model = _built(_spec(), ZeroInitResidual)
    for name, p in model.named_parameters():
        assert torch.count_nonzero(p) == p.numel(), name
    for bn in (model.bn1, model.bn2):
        mean, var = _stats(bn)
        assert torch.all((bn.weight >= 0.5) & (bn.weight <= 1.5))
        assert torch.all(bn.bias.abs() >= init_weights.BIAS_RANGE[0])
        assert torch.all(var >= init_weights.VAR_FLOOR)
        assert not torch.allclose(var, torch.ones_like(var))
        assert torch.count_nonzero(mean) == mean.numel()


def test_batch_norm_statistics_are_measured_so_activations_stay_unit_scale() -> None:
    model = _built(_spec(), ZeroInitResidual)
    x = torch.randn(init_weights.CALIBRATION_BATCH, *SHAPE[1:])
    with torch.no_grad():
        normalised = model.bn1(model.conv1(torch.relu(model.stem(x))))
    # (x - mean) / std * weight + bias with measured statistics: the spread of the weights
    assert 0.2 < float(normalised.std()) < 2.0


def test_the_weights_are_the_same_every_build() -> None:
    first, second = _spec().build().state_dict(), _spec().build().state_dict()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_layer_scale_gammas_are_drawn_near_one() -> None:
    model = _built(_spec(f"{__name__}:layer_scaled"), LayerScaled)
    assert torch.all((model.gamma >= 0.5) & (model.gamma <= 1.5))
    assert torch.all(model.norm.weight != 1) and torch.all(model.norm.bias != 0)


def test_kept_weights_are_the_builders_own() -> None:
    spec = _spec(keep_weights=True)
    assert spec.init == init_weights.BUILDER_WEIGHTS
    assert torch.count_nonzero(_built(spec, ZeroInitResidual).bn2.weight) == 0  # as built
    assert _spec().init == f"{init_weights.RULE} seed {init_weights.SEED}"


def test_a_builder_asked_for_trained_weights_keeps_them() -> None:
    assert init_weights.asks_for_trained({"pretrained": True})
    assert init_weights.asks_for_trained({"weights": "IMAGENET1K_V1"})
    assert not init_weights.asks_for_trained({"pretrained": False, "weights": None})
    assert _spec(kwargs={"pretrained": True}).keeps_builder_weights


def test_a_model_that_cannot_run_the_calibration_batch_keeps_drawn_statistics() -> None:
    mean, var = _stats(_built(_spec(f"{__name__}:fixed_batch"), FixedBatch).bn)
    low, high = init_weights.SCALE_RANGE
    assert torch.all((var >= low) & (var <= high))
    assert torch.all(mean.abs() < 1.0)


def test_a_rule_failure_names_the_way_around_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("no rule for this parameter")

    monkeypatch.setattr(init_weights, "initialise", fails)
    with pytest.raises(UnknownModelError, match="--keep-weights"):
        _spec().build()


def test_resolve_models_keeps_weights_when_asked() -> None:
    kept = resolve_models(f"resnet18,{ZERO_INIT}", input_shape=SHAPE, keep_weights=True)
    assert all(isinstance(r, ModelSpec) and r.keep_weights for r in kept)
    (default,) = resolve_models("resnet18")
    assert isinstance(default, ModelSpec) and not default.keep_weights


def test_the_key_field_names_the_rule_and_its_source() -> None:
    field = init_weights.key_field(keep=False)
    assert isinstance(field, dict)
    assert field["rule"] == init_weights.RULE and field["seed"] == init_weights.SEED
    assert field["source"] == init_weights.source_digest()
    assert init_weights.key_field(keep=True) == init_weights.BUILDER_WEIGHTS
