"""Fixtures of the cost tests: small torchvision models and a hand-countable model, exported with
the project's own pipeline (each only when a test asks for it) and kept in the artifact cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from benchharness.zoo.registry import ModelSpec

#: torchvision models of the MACs agreement tests, at inputs small enough for a shared 2-core box
#: (the two suggested in the brief at 64x64, the other two at 32x32, their smallest sane size).
AGREEMENT_MODELS: dict[str, int] = {
    "resnet18": 64,
    "mobilenet_v3_small": 64,
    "squeezenet1_1": 32,
    "shufflenet_v2_x0_5": 32,
}


@dataclass(frozen=True)
class Exported:
    name: str
    onnx: Path
    tflite: Path
    torch_macs: int
    torch_params: int


class HandCounted(nn.Module):
    """conv 3->4 (3x3, pad 1, bias) + ReLU, depthwise 3x3 (bias), concat, flatten, linear -> 10.

    At 1x3x8x8 (see ``HAND_INPUT``) every figure is counted by hand in the tests.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=True)
        self.relu = nn.ReLU()
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=True)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: Tensor) -> Tensor:
        r = self.relu(self.conv(x))
        d = self.dw(r)
        return self.fc(torch.cat([r, d], dim=1).flatten(1))


HAND_INPUT = (1, 3, 8, 8)


def _export(name: str, spec: ModelSpec) -> Exported:
    """The model exported to ONNX and TFLite through the artifact cache (the per-user one, so a
    second session reuses the files; its key covers the builder's source), with torch's counts."""
    from benchharness.cost.torch_cost import count_params, torch_macs
    from benchharness.export.pipeline import export_model

    outcomes = {o.format: o for o in export_model(spec, ["onnx", "tflite"])}
    for fmt, outcome in outcomes.items():
        assert outcome.entry is not None, f"{name} {fmt}: {outcome.error}"
    model = spec.build()
    x = torch.zeros(*spec.input_shape)
    onnx_entry, tflite_entry = outcomes["onnx"].entry, outcomes["tflite"].entry
    assert onnx_entry is not None and tflite_entry is not None
    return Exported(name, onnx_entry.path, tflite_entry.path, torch_macs(model, x),
                    count_params(model))  # fmt: skip


def spec_of(name: str) -> ModelSpec:
    """``name`` as the harness builds it: seeded weights, eval mode."""
    if name == "hand":
        return ModelSpec("cost_hand", "user", "tests.cost.conftest:HandCounted", HAND_INPUT)
    size = AGREEMENT_MODELS[name]
    return ModelSpec(f"cost_{name}", "torchvision", "torchvision.models:get_model",
                     (1, 3, size, size), kwargs={"name": name})  # fmt: skip


@pytest.fixture(scope="session")
def exported() -> Callable[[str], Exported]:
    """``exported(name)`` -> paths of the model exported to ONNX and TFLite, once per session
    and from the artifact cache after the first.

    ``name`` is a key of ``AGREEMENT_MODELS`` or ``"hand"`` (:class:`HandCounted`).
    """
    found: dict[str, Exported] = {}

    def get(name: str) -> Exported:
        if name not in found:
            found[name] = _export(name, spec_of(name))
        return found[name]

    return get
