"""A tiny residual network whose branch ends in a zero-initialised batch norm (timm's
``zero_init_last``, torchvision's ``zero_init_residual``): with these weights the branch adds
zero, and the TFLite converter folds it away. The builder of ``tests/export/test_folding.py``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: Hand-counted MACs at 1x3x32x32 (paper convention: convolutions and the linear layer).
STEM_MACS = 32 * 32 * 8 * 3 * 3 * 3
BRANCH_MACS = 2 * (32 * 32 * 8 * 8 * 3 * 3)
FC_MACS = 8 * 10
MACS = STEM_MACS + BRANCH_MACS + FC_MACS
#: Convolutions and matrix products: the stem, the branch's two convolutions, the linear layer.
COMPUTE_OPS = 4


class ZeroInitResidual(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        self.conv1 = nn.Conv2d(8, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        nn.init.zeros_(self.bn2.weight)  # the branch adds zero until trained
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.stem(x))
        branch = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.relu(x + branch).mean((2, 3)))


def zero_init_residual(num_classes: int = 10) -> nn.Module:
    return ZeroInitResidual(num_classes)
