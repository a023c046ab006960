from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchharness.cost.torch_cost import count_params
from benchharness.plan.artifacts import torch_cost
from benchharness.zoo import seeds, variants
from benchharness.zoo.registry import load_zoo


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_cnn_gpt_uses_only_snapdragon_friendly_layers_and_the_stated_shape() -> None:
    model = seeds.cnn_gpt().eval()
    allowed = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Linear, nn.AdaptiveAvgPool2d, nn.Sequential)
    leaf_types = {type(m) for m in model.modules() if not list(m.children())}
    assert all(issubclass(t, allowed) for t in leaf_types), leaf_types
    out = model(torch.zeros(1, 3, 224, 224))
    assert out.shape == (1, 100)
    convs = _convs(model)
    assert convs[0].in_channels == 3 and convs[0].out_channels == 32 and convs[0].stride == (1, 1)
    depthwise = [c for c in convs if c.groups > 1]
    assert [c.in_channels for c in depthwise] == [32, 64, 128, 256, 512]
    down = [c for c in convs if c.stride == (2, 2)]
    assert [(c.in_channels, c.out_channels) for c in down] == [
        (32, 64), (64, 128), (128, 256), (256, 512), (512, 1024)
    ]  # fmt: skip
    assert model.classifier.in_features == 1024
    # the last stage ends in BN with no ReLU after it
    assert isinstance(list(model.features)[-1], nn.BatchNorm2d)


def test_dw_resnets_are_depthwise_separable_and_fit_8_mb() -> None:
    # bytes per parameter at which each fits 8 MB: ResNet18 even in FP32, ResNet34 once INT8
    for factory, blocks, width in ((seeds.dw_resnet18, 8, 4), (seeds.dw_resnet34, 16, 1)):
        model = factory().eval()
        convs = _convs(model)
        # every non-pointwise convolution is depthwise
        assert all(c.groups == c.in_channels for c in convs if c.kernel_size != (1, 1))
        assert len([m for m in model.modules() if isinstance(m, seeds.DwBasicBlock)]) == blocks
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 100)
        assert count_params(model) * width < 8 * 1024 * 1024


# StudentNet as the network-compression notes (ML2020 HW7) write it: block 0 is
# Conv2d(3, bw0, 3, 1, 1) + BN + ReLU6 + MaxPool2d(2, 2, 0); block i = 1..7 is the depthwise
# Conv2d(bw[i-1], bw[i-1], 3, 1, 1, groups=bw[i-1]) + BN + ReLU6 + the pointwise Conv2d(., bw[i], 1),
# with MaxPool2d(2, 2, 0) after blocks 1-3; then AdaptiveAvgPool2d((1, 1)) and Linear(bw7, 11).
# Every conv and the linear keep PyTorch's default bias. bandwidth = 16 * (1, 2, 4, 8, 16, 16, 16, 16)
# with bandwidth[3:7] scaled by int(. * width_mult).
BANDWIDTH = {1.0: [16, 32, 64, 128, 256, 256, 256, 256], 0.5: [16, 32, 64, 64, 128, 128, 128, 256]}

Layer = tuple[object, ...]


def _describe(m: nn.Module) -> Layer:
    if isinstance(m, nn.Conv2d):
        return ("Conv2d", m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0],
                m.padding[0], m.groups, m.bias is not None)  # fmt: skip
    if isinstance(m, nn.BatchNorm2d):
        return ("BatchNorm2d", m.num_features)
    if isinstance(m, nn.MaxPool2d):
        return ("MaxPool2d", m.kernel_size, m.stride, m.padding)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return ("AdaptiveAvgPool2d", m.output_size)
    if isinstance(m, nn.Linear):
        return ("Linear", m.in_features, m.out_features, m.bias is not None)
    return (type(m).__name__,)


def _layers(model: nn.Module) -> list[tuple[str, Layer]]:
    return [(n, _describe(m)) for n, m in model.named_modules() if not list(m.children())]


def _notes_block(i: int, c_in: int, c_out: int, pool: bool) -> list[tuple[str, Layer]]:
    rows = [
        (f"cnn.{i}.0", ("Conv2d", c_in, c_in, 3, 1, 1, c_in, True)),
        (f"cnn.{i}.1", ("BatchNorm2d", c_in)),
        (f"cnn.{i}.2", ("ReLU6",)),
        (f"cnn.{i}.3", ("Conv2d", c_in, c_out, 1, 1, 0, 1, True)),
    ]
    return rows + ([(f"cnn.{i}.4", ("MaxPool2d", 2, 2, 0))] if pool else [])


def _notes_layers(bw: list[int]) -> list[tuple[str, Layer]]:
    rows = [
        ("cnn.0.0", ("Conv2d", 3, bw[0], 3, 1, 1, 1, True)),
        ("cnn.0.1", ("BatchNorm2d", bw[0])),
        ("cnn.0.2", ("ReLU6",)),
        ("cnn.0.3", ("MaxPool2d", 2, 2, 0)),
    ]
    for i in range(1, 8):
        rows += _notes_block(i, bw[i - 1], bw[i], pool=i <= 3)
    tail = [("cnn.8", ("AdaptiveAvgPool2d", (1, 1))), ("fc.0", ("Linear", bw[7], 11, True))]
    return [*rows, *tail]


def test_student_net_is_the_notes_layer_list_at_both_widths() -> None:
    for width, bw in BANDWIDTH.items():
        model = seeds.student_net(width_mult=width)
        assert _layers(model) == _notes_layers(bw), width
        assert seeds.student_bandwidth(width) == bw


def test_student_net_params_match_a_hand_count_from_the_notes() -> None:
    # per conv: weights in * out / groups * k * k, plus one bias per output; BN: 2 per channel
    stem = 3 * 16 * 9 + 16 + 2 * 16  # 480

    def block(c_in: int, c_out: int) -> int:
        return (c_in * 9 + c_in) + 2 * c_in + (c_in * c_out + c_out)

    assert block(16, 32) == 160 + 32 + 544
    assert block(256, 256) == 2560 + 512 + 65792
    fc = 256 * 11 + 11  # 2827
    # width 1.0: 16 -> 32 -> 64 -> 128 -> 256 -> 256 -> 256 -> 256
    full = stem + block(16, 32) + block(32, 64) + block(64, 128) + block(128, 256) \
        + 3 * block(256, 256) + fc  # fmt: skip
    assert full == 480 + 736 + 2496 + 9088 + 34560 + 3 * 68864 + 2827 == 256_779
    # width 0.5: bandwidth[3:7] halved, 16 -> 32 -> 64 -> 64 -> 128 -> 128 -> 128 -> 256
    half = stem + block(16, 32) + block(32, 64) + block(64, 64) + block(64, 128) \
        + 2 * block(128, 128) + block(128, 256) + fc  # fmt: skip
    assert half == 480 + 736 + 2496 + 4928 + 9088 + 2 * 18048 + 34560 + 2827 == 91_211
    assert count_params(seeds.student_net(width_mult=1.0)) == full
    assert count_params(seeds.student_net(width_mult=0.5)) == half


def test_student_net_output_and_resolution() -> None:
    model = seeds.student_net().eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 11)
        # four 2x2 pools: 32 -> 2 before the global pool
        assert model.cnn[:8](torch.zeros(1, 3, 32, 32)).shape == (1, 256, 2, 2)
    assert seeds.student_net(num_classes=5)(torch.zeros(2, 3, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("width", [0.0, -1.0, 1 / 256])
def test_student_net_rejects_a_width_that_leaves_no_channels(width: float) -> None:
    with pytest.raises(ValueError, match="width_mult"):
        seeds.student_net(width_mult=width)


@pytest.mark.parametrize(
    ("width", "name", "total"),
    [
        # 21_676_032 + 112**2 * (16*9 + 16*32) + 56**2 * (32*9 + 32*64) + 28**2 * (64*9 + 64*128)
        # + 14**2 * (128*9 + 128*256) + 3 * 14**2 * (256*9 + 256*256) + 256*11
        (1.0, "student_net", 90_645_760),
        # 21_676_032 + 8_228_864 + 7_325_696 + 28**2 * (64*9 + 64*64) + 14**2 * (64*9 + 64*128)
        # + 2 * 14**2 * (128*9 + 128*128) + 14**2 * (128*9 + 128*256) + 256*11
        (0.5, "student_net@w0.5", 56_137_216),
    ],
)
def test_student_net_registry_macs_at_224_are_flop_counter_total_over_2(
    width: float, name: str, total: int, tmp_path: Path
) -> None:
    base = load_zoo()["student_net"]
    spec = base if width == 1.0 else variants.with_width(base, width)
    assert spec.name == name
    assert spec.input_shape == (1, 3, 224, 224)
    registry_macs = torch_cost(spec, tmp_path)["macs"]
    model = spec.build()  # outside the counter: building runs the model to calibrate its norms
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(spec.input_shape))
    assert registry_macs == counter.get_total_flops() // 2
    # by hand (MACs = out_h * out_w * c_out * c_in / groups * k * k; no bias, BN or pool):
    # 224: stem 3->16 3x3; 112: block 1; 56: block 2; 28: block 3; 14: blocks 4-7
    bw = BANDWIDTH[width]
    sides = [224, 112, 56, 28, 14, 14, 14, 14]
    stem = sides[0] ** 2 * bw[0] * 3 * 9
    blocks = sum(sides[i] ** 2 * (bw[i - 1] * 9 + bw[i - 1] * bw[i]) for i in range(1, 8))
    assert registry_macs == stem + blocks + bw[7] * 11 == total
