"""The seed architectures of our source notes, written here because no library has them.

- ``cnn_gpt``: the CNN designed for the Snapdragon 855 (only NPU/CPU-friendly operators).
- ``dw_resnet18`` / ``dw_resnet34``: CIFAR-style ResNets whose convolutions are depthwise-separable,
  the cut that fits them under an NPU's 8 MB limit.
- ``student_net``: the StudentNet of the network-compression notes (ML2020 HW7, architecture
  design): an ordinary 3x3 stem, then seven depthwise (+BN, ReLU6) / pointwise blocks with no
  BN or activation after the pointwise, default conv biases, average-pooled into one linear layer.
  Its parts carry the notes' names (``cnn.<block>.<layer>``, ``fc.0``), so the notes' trained
  state dicts load into it as they are.
"""

from __future__ import annotations

from torch import Tensor, nn

#: Channel widths of cnn_gpt's five stages; each ends in a stride-2 conv that doubles them.
CNN_GPT_STAGES = (32, 64, 128, 256, 512)

#: Blocks per stage of ResNet18 and ResNet34 (He et al., table 1).
RESNET_LAYOUTS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}

#: StudentNet's base width and the per-block multipliers of our source notes (block 0 = stem).
STUDENT_BASE = 16
STUDENT_MULTIPLIERS = (1, 2, 4, 8, 16, 16, 16, 16)
#: Indices of ``bandwidth`` that ``width_mult`` scales: the notes' ``range(3, 7)``.
STUDENT_PRUNABLE = range(3, 7)
#: Blocks followed by a 2x2 max-pool: the stem and blocks 1-3; 14x14 is kept from there on.
STUDENT_POOLED = range(0, 4)
#: Blocks whose pointwise input the notes write as ``bandwidth[i]`` rather than ``bandwidth[i-1]``;
#: both name the same width, since multipliers 4-6 are equal and scaled alike.
STUDENT_POINTWISE_INPUT = {5: 5, 6: 6}


def _dw_separable(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    """Depthwise kxk (groups = c_in) then pointwise 1x1 to c_out, both without bias."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, kernel, stride, kernel // 2, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
    )


class CnnGpt(nn.Module):
    def __init__(self, num_classes: int = 100) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, CNN_GPT_STAGES[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(CNN_GPT_STAGES[0]),
            nn.ReLU(inplace=True),
        ]
        for i, c in enumerate(CNN_GPT_STAGES):
            last = i == len(CNN_GPT_STAGES) - 1
            layers += [
                nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False),
                nn.Conv2d(c, c, 1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.Conv2d(c, 2 * c, 3, 2, 1, bias=False),
                nn.BatchNorm2d(2 * c),
            ]
            if not last:
                layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(2 * CNN_GPT_STAGES[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.classifier(self.pool(self.features(x)).flatten(1))
        return out


class DwBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _dw_separable(c_in, c_out, 3, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = _dw_separable(c_out, c_out, 3, 1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                _dw_separable(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.relu(out + self.shortcut(x))
        return out


class DwResNet(nn.Module):
    """CIFAR-style ResNet (3x3 stem, no max-pool) with depthwise-separable convolutions."""

    def __init__(self, depth: int, num_classes: int = 100) -> None:
        super().__init__()
        layout = RESNET_LAYOUTS[depth]
        self.stem = nn.Sequential(
            _dw_separable(3, 64, 3, 1), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        )
        blocks: list[nn.Module] = []
        c_in = 64
        for stage, n_blocks in enumerate(layout):
            c_out = 64 * 2**stage
            for b in range(n_blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(DwBasicBlock(c_in, c_out, stride))
                c_in = c_out
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.fc(self.pool(self.layers(self.stem(x))).flatten(1))
        return out


def student_bandwidth(width_mult: float = 1.0) -> list[int]:
    """Channels after each block, as the notes compute them: ``int(bandwidth[i] * width_mult)``."""
    if width_mult <= 0:
        raise ValueError(f"width_mult must be positive, got {width_mult}")
    bandwidth = [STUDENT_BASE * m for m in STUDENT_MULTIPLIERS]
    for i in STUDENT_PRUNABLE:
        bandwidth[i] = int(bandwidth[i] * width_mult)
    if min(bandwidth) < 1:
        raise ValueError(f"width_mult {width_mult} leaves a block with no channels: {bandwidth}")
    return bandwidth


class StudentNet(nn.Module):
    def __init__(self, num_classes: int = 11, width_mult: float = 1.0) -> None:
        super().__init__()
        bw = student_bandwidth(width_mult)
        # the notes leave the first layer whole, as MobileNet does: its input has only 3 channels
        stem: list[nn.Module] = [nn.Conv2d(3, bw[0], 3, 1, 1), nn.BatchNorm2d(bw[0]), nn.ReLU6()]
        blocks = [stem]
        for i in range(1, len(bw)):
            c = bw[i - 1]
            pw_in = bw[STUDENT_POINTWISE_INPUT.get(i, i - 1)]
            blocks.append(
                [
                    nn.Conv2d(c, c, 3, 1, 1, groups=c),
                    nn.BatchNorm2d(c),
                    nn.ReLU6(),
                    # no BN/ReLU after the pointwise: the notes found pointwise + ReLU hurts
                    nn.Conv2d(pw_in, bw[i], 1),
                ]
            )
        for i in STUDENT_POOLED:
            blocks[i].append(nn.MaxPool2d(2, 2, 0))
        self.cnn = nn.Sequential(
            *(nn.Sequential(*layers) for layers in blocks), nn.AdaptiveAvgPool2d((1, 1))
        )
        self.fc = nn.Sequential(nn.Linear(bw[-1], num_classes))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.fc(self.cnn(x).flatten(1))
        return out


def cnn_gpt(num_classes: int = 100) -> nn.Module:
    return CnnGpt(num_classes)


def dw_resnet18(num_classes: int = 100) -> nn.Module:
    return DwResNet(18, num_classes)


def dw_resnet34(num_classes: int = 100) -> nn.Module:
    return DwResNet(34, num_classes)


def student_net(num_classes: int = 11, width_mult: float = 1.0) -> nn.Module:
    return StudentNet(num_classes, width_mult)
