"""A tiny model that ExecuTorch's XNNPACK partitioner cannot take whole, at 32x32.

``cumsum`` has no XNNPACK kernel, so the program keeps it on ExecuTorch's own kernels between two
XNNPACK partitions: the case of a model that does not lower fully.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TinyMixed(nn.Module):
    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.conv1(x))
        y = torch.cumsum(y, dim=1)
        y = self.conv2(y) + y
        return self.fc(y.mean((2, 3)))


def tiny_mixed(num_classes: int = 4) -> nn.Module:
    return TinyMixed(num_classes)


def tiny_mixed_macs(num_classes: int = 4) -> int:
    """Hand-counted MACs at 1x3x32x32: two 3x3 convolutions and the linear layer."""
    return 32 * 32 * 8 * 3 * 9 + 32 * 32 * 8 * 8 * 9 + 8 * num_classes
