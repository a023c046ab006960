"""The kernel models a predictor is built from: many small blocks on one input, in one model.

A kernel model takes one input ``(1, cin, hw, hw)`` and runs every block of its list on it, each
block a piece of network as the zoo writes it (a convolution with batch norm and activation, a
depthwise convolution, a residual add, squeeze-excitation, pooling, concat, a channel shuffle, a
fully connected layer, a resize, a lone activation). Each block's output is average-pooled to one
value per channel and the pooled vectors are concatenated into the model's output, so nothing is
dead code and the layout-agnostic pooling keeps the runtimes' own layouts (NHWC in LiteRT, NCHWc in
ONNX Runtime) between the block and its pooling. The runtimes' per-operator profiles time every
operator of every block, so one export and one job yield dozens of kernel measurements.

All blocks of a model share the input so that ONNX Runtime reorders it into its blocked layout
once, as it does once per network, instead of once per block.

``build`` is the ``module:function`` builder of the kernel models' ``ModelSpec``s; its kwargs are
plain data (they are written to a TOML manifest and hashed into the export cache key). ``PAIRS``
and ``build_pair`` are the models of fusion detection (``predict/fusion.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: Bumped whenever a block's graph changes: it is part of every kernel model's kwargs, so the
#: export cache never hands back an artifact built by older block code.
KERNELS_VERSION = 1

#: Activations a block may end in; the names are the plan's vocabulary.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "none": nn.Identity,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "hsigmoid": nn.Hardsigmoid,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
}

#: Block types and the fields each one reads besides ``t`` (documentation and plan validation).
BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "conv": ("cout", "k", "s", "g", "act"),
    "dw": ("k", "s", "act"),
    "res": ("k", "act"),
    "se": ("mid", "gate"),
    "pool": ("kind", "k", "s"),
    "cat": ("cout", "act"),
    "shuffle": ("act",),
    "fc": ("cout", "act"),
    "resize": ("mode",),
    "act": ("act",),
}


def conv_bn_act(
    cin: int, cout: int, k: int, s: int = 1, g: int = 1, act: str = "none", pad: int | None = None
) -> nn.Sequential:
    """Convolution, batch norm, activation: the exporters fold the batch norm into the conv."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, k // 2 if pad is None else pad, groups=g, bias=False),
        nn.BatchNorm2d(cout),
        ACTIVATIONS[act](),
    )


class Residual(nn.Module):
    """``act(conv_bn(x) + x)``: ResNet's basic-block tail (relu) or MobileNetV2's (none)."""

    def __init__(self, c: int, k: int, act: str) -> None:
        super().__init__()
        self.body = conv_bn_act(c, c, k)
        self.act = ACTIVATIONS[act]()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.act(self.body(x) + x)
        return out


class SqueezeExcite(nn.Module):
    """Pool, squeeze (1x1 + ReLU), excite (1x1 + gate), scale: MobileNetV3 / EfficientNet SE."""

    def __init__(self, c: int, mid: int, gate: str) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, mid, 1)
        self.fc2 = nn.Conv2d(mid, c, 1)
        self.gate = ACTIVATIONS[gate]()

    def forward(self, x: Tensor) -> Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        w = self.gate(self.fc2(F.relu(self.fc1(w))))
        out: Tensor = x * w
        return out


class Pool(nn.Module):
    def __init__(self, kind: str, k: int, s: int) -> None:
        super().__init__()
        pad = k // 2 if kind == "max" else 0
        self.pool = nn.MaxPool2d(k, s, pad) if kind == "max" else nn.AvgPool2d(k, s)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.pool(x)
        return out


class Concat(nn.Module):
    """``cat(x, act(conv1x1(x)))``: SqueezeNet's fire expand and GhostNet's ghost module."""

    def __init__(self, c: int, cout: int, act: str) -> None:
        super().__init__()
        self.branch = conv_bn_act(c, cout, 1, act=act)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((x, self.branch(x)), 1)


class Shuffle(nn.Module):
    """ShuffleNetV2's unit: split, one branch through a 1x1, concat, shuffle two groups."""

    def __init__(self, c: int, act: str) -> None:
        super().__init__()
        self.cut = c // 2
        self.branch = conv_bn_act(c - self.cut, c - self.cut, 1, act=act)

    def forward(self, x: Tensor) -> Tensor:
        a, b = x[:, : self.cut], x[:, self.cut :]
        y = torch.cat((a, self.branch(b)), 1)
        n, c, h, w = y.shape
        return y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


class Linear(nn.Module):
    def __init__(self, c: int, cout: int, act: str) -> None:
        super().__init__()
        self.fc = nn.Linear(c, cout)
        self.act = ACTIVATIONS[act]()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.act(self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))
        return out[:, :, None, None]


class Resize(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def block(cin: int, spec: Mapping[str, Any]) -> nn.Module:
    """The torch module of one block of the plan."""
    t = spec["t"]
    act = str(spec.get("act", "none"))
    if t == "conv":
        return conv_bn_act(
            cin, int(spec["cout"]), int(spec["k"]), int(spec["s"]), int(spec.get("g", 1)), act
        )
    if t == "dw":
        return conv_bn_act(cin, cin, int(spec["k"]), int(spec["s"]), cin, act)
    if t == "res":
        return Residual(cin, int(spec["k"]), act)
    if t == "se":
        return SqueezeExcite(cin, int(spec["mid"]), str(spec["gate"]))
    if t == "pool":
        return Pool(str(spec["kind"]), int(spec["k"]), int(spec["s"]))
    if t == "cat":
        return Concat(cin, int(spec["cout"]), act)
    if t == "shuffle":
        return Shuffle(cin, act)
    if t == "fc":
        return Linear(cin, int(spec["cout"]), act)
    if t == "resize":
        return Resize(str(spec["mode"]))
    if t == "act":
        return ACTIVATIONS[act]()
    raise ValueError(f"unknown kernel block type {t!r}; known: {', '.join(BLOCK_FIELDS)}")


class KernelModel(nn.Module):
    """Every block on the same input; each block's output pooled per channel, all concatenated.

    The blocks read the output of a 1x1 depthwise stem rather than the graph input: a graph input
    keeps the exporter's NCHW layout, and an add or concat on it would be run on transposed
    copies that a block inside a network never pays for. A network's first layers do read the
    image itself, and runtimes treat them so (LiteRT folds the PAD of a strided first conv into
    it only there): ``stem=False`` measures those layers on the graph input.
    """

    def __init__(self, cin: int, blocks: Sequence[Mapping[str, Any]], stem: bool = True) -> None:
        super().__init__()
        self.stem: nn.Module = nn.Conv2d(cin, cin, 1, groups=cin) if stem else nn.Identity()
        self.blocks = nn.ModuleList(block(cin, b) for b in blocks)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        pooled = [torch.flatten(F.adaptive_avg_pool2d(b(x), 1), 1) for b in self.blocks]
        return torch.cat(pooled, 1)


def build(
    cin: int,
    blocks: Sequence[Mapping[str, Any]],
    version: int = KERNELS_VERSION,
    stem: bool = True,
) -> nn.Module:
    """Builder of a kernel model (``benchharness.predict.kernels:build``)."""
    if version != KERNELS_VERSION:
        raise ValueError(
            f"kernel models of version {version} were planned by another harness version "
            f"(this one builds version {KERNELS_VERSION}); plan the build again"
        )
    return KernelModel(cin, blocks, stem)


# --- fusion detection: one operator, another, and the two in sequence --------------------------

#: The operator pairs tested for fusion: (first, second) names of PAIR_OPS, as the zoo chains them.
PAIRS: tuple[tuple[str, str], ...] = (
    ("conv", "relu"),
    ("conv", "relu6"),
    ("conv", "hswish"),
    ("conv", "sigmoid"),
    ("dw", "relu6"),
    ("conv", "add"),
    ("add", "relu"),
    ("fc", "relu"),
    ("pad", "dwvalid"),
    ("conv", "gap"),
    ("mul", "add"),
)


class PairOp(nn.Module):
    """One operator of a fusion pair on a ``(1, c, hw, hw)`` tensor, keeping its shape.

    ``add`` and ``mul`` take their second operand from the model input, as a residual does.
    """

    def __init__(self, name: str, c: int) -> None:
        super().__init__()
        self.name = name
        if name == "conv":
            self.op: nn.Module = nn.Conv2d(c, c, 1, bias=False)
        elif name in ("dw", "dwvalid"):
            self.op = nn.Conv2d(c, c, 3, 1, 1 if name == "dw" else 0, groups=c, bias=False)
        elif name == "fc":
            self.op = nn.Conv2d(c, c, 1)  # 1x1 on 1x1 positions after gap: ORT Conv, TFLite FC
        elif name in ACTIVATIONS:
            self.op = ACTIVATIONS[name]()
        else:
            self.op = nn.Identity()

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        if self.name == "add":
            return x + skip
        if self.name == "mul":
            return x * skip
        if self.name == "pad":
            return F.pad(x, (1, 1, 1, 1))
        if self.name == "gap":
            return F.adaptive_avg_pool2d(x, 1)
        out: Tensor = self.op(x)
        return out


class PairModel(nn.Module):
    """``ops`` in sequence on the input; an ``fc`` pair works on the pooled input."""

    def __init__(self, ops: Sequence[str], c: int) -> None:
        super().__init__()
        self.pooled = "fc" in ops
        self.ops = nn.ModuleList(PairOp(name, c) for name in ops)

    def forward(self, x: Tensor) -> Tensor:
        if self.pooled:
            x = F.adaptive_avg_pool2d(x, 1)
        y = x
        for op in self.ops:
            y = op(y, x)
        return y


def build_pair(ops: Sequence[str], c: int, version: int = KERNELS_VERSION) -> nn.Module:
    """Builder of a fusion-detection model (``benchharness.predict.kernels:build_pair``)."""
    if version != KERNELS_VERSION:
        raise ValueError(f"pair models of version {version} were planned by another version")
    return PairModel(ops, c)
