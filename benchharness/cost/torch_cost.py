"""Model-level MACs and params on the torch model, in the paper convention of docs/method.md.

MACs are torch's ``FlopCounterMode`` total / 2: it counts convolutions and matrix products only,
which is exactly the convention of the ResNet/MobileNet/ShuffleNet papers and of torchvision's
published ``_ops``. Element-wise work is counted separately, on the exported graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchharness.errors import CostError

if TYPE_CHECKING:
    import torch
    from torch import nn


def torch_macs(model: nn.Module, example: torch.Tensor) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example)
    except Exception as exc:  # a model that cannot run cannot be counted
        raise CostError(f"counting MACs failed: {type(exc).__name__}: {exc}") from exc
    return int(counter.get_total_flops()) // 2


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
