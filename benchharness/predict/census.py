"""The zoo's own layers: what kernel configurations the predictor's sampling starts from.

Each zoo model is run once in PyTorch with forward hooks on its leaf modules, which record every
convolution, linear layer and pooling with the shape it is called on, the activation that follows
it, and the network blocks (residual, squeeze-excitation, fire, ghost, shuffle units) by the class
names torchvision and timm give them. Nothing is exported; a census of the zoo takes seconds.

Every layer carries its model's **family** (``family_of``), so leave-one-family-out evaluation can
leave out the kernels drawn from the family it holds out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchharness.errors import HarnessError
from benchharness.zoo.registry import ModelSpec

#: Zoo name prefixes -> family, checked in order; seed models form one family of their own.
FAMILY_PREFIXES = (
    ("resnet", "resnet"),
    ("dw_resnet", "seeds"),
    ("mobilenet", "mobilenet"),
    ("shufflenet", "shufflenet"),
    ("squeezenet", "squeezenet"),
    ("ghostnet", "ghostnet"),
    ("efficientnet", "efficientnet"),
    ("mnasnet", "mnasnet"),
)
#: Family of a model the prefixes do not name (outside models, user files).
OTHER_FAMILY = "other"
#: Bumped when what a census records changes, so a cached census of older code is not reused.
CENSUS_VERSION = 2

#: Activation modules, by class name, as the kernel plan names them.
ACTIVATION_NAMES = {
    "ReLU": "relu",
    "ReLU6": "relu6",
    "Hardswish": "hswish",
    "Hardsigmoid": "hsigmoid",
    "Sigmoid": "sigmoid",
    "SiLU": "silu",
}
#: Block classes of torchvision and timm and the kernel block each one is measured as.
BLOCK_CLASSES = {
    "BasicBlock": "res",
    "Bottleneck": "res",
    "SqueezeExcitation": "se",
    "SqueezeExcite": "se",
    "SEModule": "se",
    "Fire": "cat",
    "GhostModule": "cat",
    "GhostModuleV2": "cat",
    "ShuffleInvertedResidual": "shuffle",
}
#: Blocks that end in a residual add when they keep their input's shape (MobileNetV2/V3,
#: MnasNet, EfficientNet, GhostNet, timm's separable blocks).
RESIDUAL_WHEN_SAME_SHAPE = frozenset(
    {"InvertedResidual", "_InvertedResidual", "MBConv", "GhostBottleneck", "DepthwiseSeparableConv"}
)


def family_of(name: str, source: str = "") -> str:
    """The family a model belongs to for leave-one-family-out evaluation."""
    if source == "seed":
        return "seeds"
    low = name.lower()
    for prefix, family in FAMILY_PREFIXES:
        if low.startswith(prefix):
            return family
    return OTHER_FAMILY


@dataclass(frozen=True)
class Layer:
    """One layer call of a zoo model: ``kind`` is conv, linear, pool or a block type."""

    family: str
    model: str
    kind: str
    cin: int
    hw: int
    cout: int = 0
    k: int = 1
    s: int = 1
    g: int = 1
    act: str = "none"
    extra: str = ""


def _module_kind(module: Any) -> str:
    name = type(module).__name__
    if name == "InvertedResidual" and type(module).__module__.endswith("shufflenetv2"):
        return "ShuffleInvertedResidual"
    return name


def census_of(spec: ModelSpec, family: str) -> list[Layer]:
    """The layers one model calls, in call order."""
    import torch
    from torch import nn

    model = spec.build()
    calls: list[tuple[Any, tuple[int, ...], tuple[int, ...]]] = []
    hooks = []

    def hook(module: Any, args: Any, output: Any) -> None:
        x = args[0] if args else None
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else ()
        out = tuple(output.shape) if isinstance(output, torch.Tensor) else ()
        calls.append((module, shape, out))

    watched = BLOCK_CLASSES.keys() | RESIDUAL_WHEN_SAME_SHAPE
    for module in model.modules():
        if not list(module.children()) or _module_kind(module) in watched:
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.zeros(spec.input_shape))
    except Exception as exc:  # a builder's own failure: the census skips the model
        raise HarnessError(f"census of {spec.name}: {type(exc).__name__}: {exc}") from exc
    finally:
        for h in hooks:
            h.remove()
    layers: list[Layer] = []
    for i, (module, shape, out) in enumerate(calls):
        if len(shape) != 4 and not isinstance(module, nn.Linear):
            continue
        kind = _module_kind(module)
        cin, hw = (shape[1], shape[2]) if len(shape) == 4 else (shape[-1], 1)
        if isinstance(module, nn.Conv2d):
            act = "none"
            for later, _, _ in calls[i + 1 : i + 3]:
                name = type(later).__name__
                if name in ACTIVATION_NAMES:
                    act = ACTIVATION_NAMES[name]
                if not name.startswith("BatchNorm"):
                    break  # the activation follows the conv or its batch norm, nothing else
            layers.append(
                Layer(
                    family,
                    spec.name,
                    "conv",
                    cin,
                    hw,
                    module.out_channels,
                    int(module.kernel_size[0]),
                    int(module.stride[0]),
                    int(module.groups),
                    act,
                )
            )
        elif isinstance(module, nn.Linear):
            layers.append(Layer(family, spec.name, "linear", cin, 1, module.out_features))
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
            s = module.stride if isinstance(module.stride, int) else module.stride[0]
            pool = "max" if isinstance(module, nn.MaxPool2d) else "avg"
            layers.append(
                Layer(family, spec.name, "pool", cin, hw, cin, int(k), int(s or k), extra=pool)
            )
        elif kind in BLOCK_CLASSES:
            cout = out[1] if len(out) == 4 else cin
            layers.append(Layer(family, spec.name, BLOCK_CLASSES[kind], cin, hw, cout))
        elif kind in RESIDUAL_WHEN_SAME_SHAPE and out == shape:
            layers.append(Layer(family, spec.name, "res", cin, hw, cin))
    return layers


def zoo_census(specs: Iterable[ModelSpec], cache: Path | None = None) -> list[Layer]:
    """The layers of every model, cached as JSON (a census is the same until the zoo changes)."""
    specs = list(specs)
    key = [
        CENSUS_VERSION,
        *sorted(
            [s.name, s.builder, json.dumps(s.kwargs, sort_keys=True), list(s.input_shape)]
            for s in specs
        ),
    ]
    if cache is not None and cache.exists():
        try:
            data = json.loads(cache.read_text(encoding="utf-8"))
            if data.get("key") == json.loads(json.dumps(key)):
                return [Layer(**row) for row in data["layers"]]
        except (OSError, ValueError, TypeError, KeyError):
            pass
    layers: list[Layer] = []
    for spec in specs:
        layers.extend(census_of(spec, family_of(spec.name, spec.source)))
    if cache is not None:
        from benchharness.results.store import atomic_write_text

        atomic_write_text(
            cache, json.dumps({"key": key, "layers": [asdict(layer) for layer in layers]})
        )
    return layers
