"""A kernel's feature row: MACs as a SIMD kernel pays them (tiled) and its output pixels."""

from __future__ import annotations

import math

import pytest

from benchharness.predict.features import CHANNEL_TILE, kernel_features, kernel_key
from benchharness.predict.join import Kernel
from tests.predict.synthetic import Builder


def _conv(cin: int, cout: int, hw: int, k: int, s: int, g: int) -> tuple[Kernel, Builder]:
    b = Builder()
    o = math.ceil(hw / s)
    node = b.add(
        "Conv",
        ["input"],
        "y",
        [(1, cin, hw, hw)],
        (1, cout, o, o),
        macs=o * o * cout * (cin // g) * k * k,
        w_b=cout * (cin // g) * k * k * 4,
        attrs={"k": k, "s": s, "g": g},
    )
    return Kernel(node, [node]), b


@pytest.mark.parametrize(
    ("cin", "cout", "g", "factor"),
    [
        (4, 4, 4, 4.0),  # a depthwise convolution of 4 channels fills a quarter of a tile
        (6, 6, 6, 16 / 6),
        (48, 48, 48, 1.0),  # whole tiles
        (40, 40, 40, 48 / 40),  # two full tiles and half of a third
        (64, 32, 1, 1.0),
        (64, 8, 1, 2.0),  # a thin output: the GEMM's tile of output channels half empty
        (64, 32, 4, 2.0),  # RegNet-like groups: 8 output channels per group
    ],
)
def test_tiled_macs_pad_the_vectorised_channels_to_whole_tiles(
    cin: int, cout: int, g: int, factor: float
) -> None:
    kernel, b = _conv(cin, cout, 56, 3, 1, g)
    row = kernel_features(kernel, b.graph())
    assert CHANNEL_TILE == 16
    assert row["macs"] == kernel.head.cost.macs > 0
    assert row["macs_tiled"] == pytest.approx(row["macs"] * factor)
    assert kernel_key(kernel, "onnx") == (
        "Conv/dw" if g == cin else "Conv" if g == 1 else "Conv/grouped"
    )


def test_pixels_are_the_output_side_squared() -> None:
    kernel, b = _conv(16, 16, 56, 3, 2, 1)
    assert kernel_features(kernel, b.graph())["pixels"] == 28 * 28


def test_an_operator_without_macs_has_no_tiled_macs() -> None:
    b = Builder()
    node = b.add("Concat", ["a", "b"], "y", [(1, 4, 56, 56), (1, 4, 56, 56)], (1, 8, 56, 56))
    row = kernel_features(Kernel(node, [node]), b.graph())
    assert row["macs"] == row["macs_tiled"] == 0
    assert row["pixels"] == 56 * 56
