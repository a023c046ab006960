"""`bench check`: crafted models with hand-computed answers, and the shipped profiles on the zoo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from torch import Tensor, nn

from benchharness.api import RunRequest, run
from benchharness.cost import facts as cost_facts
from benchharness.errors import ConstraintError
from benchharness.plan import fit as check
from benchharness.profiles.device_profile import DeviceProfile, load_profile, parse_profile
from benchharness.zoo.registry import ModelSpec, load_zoo

ROOT = Path(__file__).resolve().parents[2]

#: Elements of the crafted chain below at 1x3x8x8: input, conv/relu output, linear output.
IN, MID, OUT = 3 * 8 * 8, 4 * 8 * 8, 64
#: Its weights: conv 4x3x3x3 + bias 4, linear 64x256 + bias 64.
CONV_W, FC_W = 4 * 3 * 3 * 3 + 4, OUT * MID + OUT


class OneBigLayer(nn.Module):
    """conv -> relu -> flatten -> linear: the linear layer dwarfs the rest."""

    def __init__(self, num_classes: int = OUT) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(MID, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.relu(self.conv(x)).flatten(1))


class WithSiLU(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.SiLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.act(self.conv(x))).flatten(1))


def one_big_layer(num_classes: int = OUT) -> nn.Module:
    return OneBigLayer(num_classes)


def with_silu(num_classes: int = 10) -> nn.Module:
    return WithSiLU(num_classes)


BIG = ModelSpec("one_big_layer", "user", "tests.plan.test_fit:one_big_layer", (1, 3, 8, 8))
SILU = ModelSpec("with_silu", "user", "tests.plan.test_fit:with_silu", (1, 3, 8, 8))


def profile(**constraints: object) -> DeviceProfile:
    return parse_profile(
        {"name": "npu", "transport": "local", "constraints": constraints}, Path("npu.toml")
    )


def test_facts_of_a_chain_are_the_hand_counted_ones() -> None:
    facts = cost_facts.torch_facts(BIG)
    assert [(layer.name, layer.op) for layer in facts.layers] == [
        ("conv", "Conv2d"), ("relu", "ReLU"), ("<model>:flatten", "Flatten"), ("fc", "Linear"),
    ]  # fmt: skip
    conv, relu, _flatten, fc = facts.layers
    assert (conv.weights, conv.inputs, conv.outputs) == (CONV_W, IN, MID)
    assert (relu.weights, relu.inputs, relu.outputs) == (0, MID, MID)
    assert (fc.weights, fc.inputs, fc.outputs) == (FC_W, MID, OUT)  # flatten is a view
    assert facts.params == CONV_W + FC_W
    # the input is freed after the conv; relu holds its input and output at once
    assert facts.activation_peak == 2 * MID


def test_exactly_one_layer_over_the_per_layer_limit() -> None:
    fc_bytes = 4 * (FC_W + MID + OUT)
    limit = 4 * (CONV_W + IN + MID) + 1  # just above the conv, the second-largest layer
    (result,) = check.check_models(profile(max_layer_bytes=limit), [BIG])
    assert not result.fits
    (violation,) = result.violations
    assert violation.kind == "layer_bytes"
    assert violation.layers == ("fc",)
    assert violation.actual == fc_bytes
    assert violation.over_bytes == fc_bytes - limit
    assert "fc" in violation.describe() and "over by" in violation.describe()
    # the whole model fits the model and activation limits
    assert result.model_bytes == 4 * (CONV_W + FC_W)
    assert result.max_layer == "fc" and result.max_layer_bytes == fc_bytes


def test_precision_scales_weights_and_activations() -> None:
    fp32, int8 = check.check_models(profile(), [BIG], ["fp32", "int8"])
    assert int8.precision == "int8-static"
    assert int8.model_bytes is not None and int8.activation_peak_bytes is not None
    assert fp32.model_bytes == 4 * int8.model_bytes
    assert fp32.activation_peak_bytes == 4 * int8.activation_peak_bytes
    (dynamic,) = check.check_models(profile(), [BIG], ["int8-dynamic"])
    assert dynamic.activation_peak_bytes == fp32.activation_peak_bytes  # float activations


def test_an_operator_the_device_lacks_is_named_with_its_layer() -> None:
    ops = ["Conv2d", "ReLU", "AvgPool2d", "Flatten", "Linear"]
    (result,) = check.check_models(profile(supported_ops=ops), [SILU])
    (violation,) = result.violations
    assert violation.kind == "unsupported_ops"
    assert violation.layers == ("act",)
    assert "SiLU x1" in violation.detail
    (ok,) = check.check_models(profile(supported_ops=[*ops, "SiLU"]), [SILU])
    assert ok.fits


def test_model_activation_and_total_limits(tmp_path: Path) -> None:
    weights, peak = 4 * (CONV_W + FC_W), 4 * 2 * MID
    (result,) = check.check_models(
        profile(max_model_bytes=weights - 1, max_activation_bytes=peak), [BIG]
    )
    assert [v.kind for v in result.violations] == ["model_bytes"]
    assert result.violations[0].over_bytes == 1
    toml = tmp_path / "shared.toml"
    toml.write_text(
        f'transport = "local"\n[constraints]\nmax_total_bytes = {weights + peak - 10}\n'
    )
    (result,) = check.check_models(load_profile(str(toml)), [BIG])
    assert [v.kind for v in result.violations] == ["total_bytes"]
    assert result.violations[0].over_bytes == 10


@pytest.fixture(scope="module")
def zoo() -> dict[str, ModelSpec]:
    return load_zoo()


def test_cnn_gpt_fits_the_855_and_mobilenet_v3_does_not(zoo: dict[str, ModelSpec]) -> None:
    sd855 = load_profile("sd855-cpu")
    (gpt,) = check.check_models(sd855, [zoo["cnn_gpt"].with_input_shape((1, 3, 32, 32))])
    assert gpt.fits, gpt.summary()
    (v3,) = check.check_models(sd855, [zoo["mobilenet_v3_small"].with_input_shape((1, 3, 64, 64))])
    assert not v3.fits
    assert "Hardswish" in v3.summary()


def test_csk6_takes_dw_resnet18_but_not_cnn_gpt_in_fp32(zoo: dict[str, ModelSpec]) -> None:
    csk6 = load_profile("csk6")
    assert check.total_limit(csk6) == 8 * 1024 * 1024
    (dw,) = check.check_models(csk6, [zoo["dw_resnet18"]])
    assert dw.fits, dw.summary()
    (gpt,) = check.check_models(csk6, [zoo["cnn_gpt"].with_input_shape((1, 3, 32, 32))])
    assert "model_bytes" in [v.kind for v in gpt.violations]


def test_run_refuses_a_model_that_does_not_fit(tmp_path: Path) -> None:
    with pytest.raises(ConstraintError, match=r"(?s)one_big_layer.*--force"):
        check.require_fit([profile(max_model_bytes=100)], [BIG])
    check.require_fit([load_profile("local"), profile(max_model_bytes=10**9)], [BIG])
    request = RunRequest(
        devices=("csk6",), models="cnn_gpt", input_shape="1x3x32x32", results_dir=tmp_path
    )
    with pytest.raises(ConstraintError, match="cnn_gpt"):
        run(request)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # refused before any run folder


def test_cli_check_json_and_exit_status() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchharness.cli", "check", "--device", "sd855-cpu",
         "--models", "tests.plan.test_fit:with_silu,tests.plan.test_fit:one_big_layer",
         "--input-shape", "1x3x8x8", "--json"],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    rows = {r["model"]: r for r in json.loads(proc.stdout)}
    assert rows["one_big_layer"]["fits"] is True
    assert rows["with_silu"]["fits"] is False
    assert rows["with_silu"]["violations"][0]["kind"] == "unsupported_ops"
