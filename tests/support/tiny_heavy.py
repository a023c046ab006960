"""A designed slowdown for ``bench compare`` tests: a model with the same name as
``tests.support.tiny:tiny_cnn`` (same input, same output) that does far more work.

Run under the same model name, it plays a code change that made the model slower, so two runs
match row for row and the comparison must call it slower. TinyCnn does ~0.3 MMACs at 32x32;
this one ~19 MMACs (two 32-channel 3x3 convolutions at full resolution), so its median is many
times larger even on a loaded machine.
"""

from __future__ import annotations

from torch import Tensor, nn

#: Channels of the heavy convolutions: 32 -> 32 at 32x32 is 9.4 MMACs per layer.
WIDTH = 32


class HeavyCnn(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, WIDTH, 3, 1, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(WIDTH, WIDTH, 3, 1, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(WIDTH, WIDTH, 3, 1, 1, bias=False),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(WIDTH, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def tiny_cnn(num_classes: int = 10) -> nn.Module:
    """Named like the light model on purpose (see the module docstring)."""
    return HeavyCnn(num_classes)
