"""The weights a model is exported with when it has no trained ones: seeded, and never degenerate.

Untrained builders initialise some parameters to exact zeros or identities on purpose: timm's
``zero_init_last`` and torchvision's ``zero_init_residual`` set the last batch norm of every
residual branch to zero, layer-scale parameters start at 1e-6, biases at 0, and every batch norm
starts as the identity (mean 0, variance 1). A converter is right to fold a branch that adds zero
(the TFLite converter removes it whole), so the artifact would run less than the model defines.
This harness never loads trained weights unless asked, so before export every model gets these
weights instead, under rule ``seeded-normal/v1``:

* one ``torch.Generator`` seeded with ``SEED`` draws every tensor: parameters in
  ``named_parameters()`` order, then buffers module by module;
* a parameter whose name has ``bias`` in it: magnitude uniform in ``BIAS_RANGE``, random sign;
* any other parameter of rank >= 2 (convolution and linear weights, embeddings, attention
  projections, position tables): normal, mean 0, standard deviation ``sqrt(2 / fan_in)`` (He),
  where ``fan_in`` is the number of elements of one output slice;
* any other parameter of rank <= 1 (normalisation scales, layer-scale gammas, PReLU slopes, scalar
  gates): uniform in ``SCALE_RANGE``;
* normalisation statistics, buffers named ``running_mean`` (normal with standard deviation
  ``MEAN_STD``) and ``running_var`` (uniform in ``SCALE_RANGE``), and a frozen norm's
  ``weight`` and ``bias`` buffers (drawn as the parameters above); every other buffer (masks,
  index tables, counters) is the model's own;
* then the statistics of every batch norm are measured on ``CALIBRATION_BATCH`` seeded
  standard-normal inputs of the model's input shape (cumulative averages; every other layer in
  eval mode), with the variance floored at ``VAR_FLOOR``, so each normalises as a trained one
  does and activations stay of order one at any depth (with drawn statistics alone the signal
  explodes through residual stacks or decays into the biases). A model that cannot run on that
  batch keeps the drawn statistics; its export then fails with its own message.

No drawn value is exactly zero, and none is an identity (scale 1, shift 0), so no branch can be
folded away as constant. ``ModelSpec.keep_weights`` (``--keep-weights``) keeps the builder's own
weights instead, for trained checkpoints; a builder asked for trained weights
(``pretrained=True``, a ``weights=`` name) keeps them without it.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The rule's name, recorded with every artifact; a new rule gets a new version.
RULE = "seeded-normal/v1"
#: The generator's seed: every export of a model gets the same weights.
SEED = 0
#: What rows say of a model whose builder's weights were kept (``--keep-weights``).
BUILDER_WEIGHTS = "builder"
#: Bias magnitudes: small beside unit activations, never zero.
BIAS_RANGE = (0.01, 0.1)
#: Scales (normalisation weights, layer-scale gammas) and drawn variances: around 1, never 1
#: for a whole layer and never near 0.
SCALE_RANGE = (0.5, 1.5)
#: Standard deviation of drawn running means: a shift, small beside unit activations.
MEAN_STD = 0.1
#: He initialisation's gain for ReLU-like layers: keeps activations' scale through depth.
WEIGHT_GAIN = math.sqrt(2.0)
#: Inputs the batch-norm statistics are measured on: more than one, so a norm over a 1x1 map
#: (or a flat feature vector) still sees several values per channel.
CALIBRATION_BATCH = 4
#: Seed of the calibration inputs (not the verification input's).
CALIBRATION_SEED = 7
#: Smallest measured variance kept: a channel that barely varies is not scaled up by more than
#: 1 / sqrt(VAR_FLOOR) = 10x (a converter folds the scale into the weights).
VAR_FLOOR = 1e-2
#: Builder keywords that ask for trained weights unless empty (None, False, "", "none").
TRAINED_KWARGS = ("pretrained", "weights")
#: Buffers of a normalisation layer's statistics, set by the rule.
STAT_BUFFERS = ("running_mean", "running_var")
#: Affine buffers of frozen normalisation layers (class name containing ``Norm``).
FROZEN_AFFINE_BUFFERS = ("weight", "bias")


def label(keep: bool, seed: int = SEED) -> str:
    """What the ``init`` column says: ``seeded-normal/v1 seed 0``, or ``builder`` when kept."""
    return BUILDER_WEIGHTS if keep else f"{RULE} seed {seed}"


def asks_for_trained(kwargs: Mapping[str, Any]) -> bool:
    """Whether a builder's keywords ask for trained weights (``pretrained=True``, a
    torchvision ``weights=`` enum or name): those are kept, not replaced."""
    return any(kwargs.get(k) not in (None, False, "", "none", "None") for k in TRAINED_KWARGS)


@functools.cache
def source_digest() -> str:
    """sha256 of this module: the export cache key carries it, so a changed rule re-exports."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def key_field(keep: bool, seed: int = SEED) -> str | dict[str, Any]:
    """The export cache key's ``weights`` field: what decides the exported weights."""
    if keep:
        return BUILDER_WEIGHTS
    return {"rule": RULE, "seed": seed, "source": source_digest()}


def initialise(model: nn.Module, input_shape: Sequence[int], seed: int = SEED) -> None:
    """Give ``model`` (in eval mode) the weights of rule ``seeded-normal/v1``, in place."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.is_floating_point():
                param.copy_(_draw_parameter(_leaf(name), param, generator))
        for module in model.modules():
            for name, buf in module.named_buffers(recurse=False):
                drawn = _draw_buffer(module, name, buf, generator)
                if drawn is not None:
                    buf.copy_(drawn)
    calibrate_batch_norms(model, input_shape)


def _leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _draw_parameter(leaf: str, param: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    import torch

    if "bias" in leaf:
        return _signed_uniform(param.shape, BIAS_RANGE, generator).to(param.dtype)
    if param.dim() >= 2:
        fan_in = max(1, param[0].numel())
        std = WEIGHT_GAIN / math.sqrt(fan_in)
        drawn = torch.randn(param.shape, generator=generator) * std
        drawn[drawn == 0] = std  # a normal draw of exactly 0 is possible in float32
        return drawn.to(param.dtype)
    return _uniform(param.shape, SCALE_RANGE, generator).to(param.dtype)


def _draw_buffer(
    module: nn.Module, name: str, buf: torch.Tensor, generator: torch.Generator
) -> torch.Tensor | None:
    """The drawn value of a normalisation layer's buffer; None leaves the buffer as it is."""
    import torch

    if not buf.is_floating_point():
        return None
    if name == "running_mean":
        return (torch.randn(buf.shape, generator=generator) * MEAN_STD).to(buf.dtype)
    if name == "running_var":
        return _uniform(buf.shape, SCALE_RANGE, generator).to(buf.dtype)
    if name in FROZEN_AFFINE_BUFFERS and "Norm" in type(module).__name__:
        return _draw_parameter(name, buf, generator)
    return None


def _uniform(
    shape: torch.Size, bounds: tuple[float, float], generator: torch.Generator
) -> torch.Tensor:
    import torch

    low, high = bounds
    return torch.rand(shape, generator=generator) * (high - low) + low


def _signed_uniform(
    shape: torch.Size, bounds: tuple[float, float], generator: torch.Generator
) -> torch.Tensor:
    import torch

    sign = torch.randint(0, 2, shape, generator=generator) * 2 - 1
    return _uniform(shape, bounds, generator) * sign


def calibrate_batch_norms(model: nn.Module, input_shape: Sequence[int]) -> bool:
    """Measure every batch norm's statistics on seeded inputs (see the module docstring);
    False, with the drawn statistics kept, when the model cannot run on them."""
    import torch
    from torch import nn

    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if not norms:
        return True  # nothing to measure
    if not input_shape:
        return False
    saved = {m: (m.momentum, m.training, _stats(m)) for m in norms}
    shape = (CALIBRATION_BATCH, *input_shape[1:])
    x = torch.randn(shape, generator=torch.Generator().manual_seed(CALIBRATION_SEED))
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: the batch's own statistics
        m.train()
    try:
        with torch.no_grad():
            model(x)
        measured = True
    except Exception:  # any failure to run means: keep the drawn statistics
        measured = False
    with torch.no_grad():
        for m, (momentum, training, stats) in saved.items():
            m.momentum = momentum
            m.train(training)
            if not measured:
                _restore(m, stats)
            elif m.running_var is not None:
                m.running_var.clamp_(min=VAR_FLOOR)
    return measured


def _stats(norm: nn.Module) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    mean, var = getattr(norm, "running_mean", None), getattr(norm, "running_var", None)
    return (
        mean.clone() if mean is not None else None,
        var.clone() if var is not None else None,
    )


def _restore(norm: nn.Module, stats: tuple[torch.Tensor | None, torch.Tensor | None]) -> None:
    for name, value in zip(STAT_BUFFERS, stats, strict=True):
        buf = getattr(norm, name, None)
        if buf is not None and value is not None:
            buf.copy_(value)
