"""DenseNet-BC of Huang et al. (2017): bottleneck layers and compressed transitions.

A 3x3 stem with ``2 * growth`` channels, dense blocks separated by transitions
(BN-ReLU-1x1 conv to ``floor(compression * channels)``, 2x2 average pooling), then
BN-ReLU, global average pooling and a linear layer.  Each dense layer is
BN-ReLU-1x1 conv (``4 * growth``)-BN-ReLU-3x3 conv (``growth``) and its output is
concatenated to its input.

``depth`` must be ``6n+4`` (three blocks of ``n`` two-conv layers plus stem,
two transitions and classifier), e.g. 100 for DenseNet-BC-100-12.  The BAN paper's
depths 90 and 80 do not fit that form, so ``layers`` (layers per block, e.g.
``[14, 14, 15]``) overrides ``depth`` when given; any number of blocks works, the
input then needs at least ``2 ** (blocks - 1)`` pixels a side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ban.core.errors import ConfigError
from ban.nets import register
from ban.nets.resnet import assemble, blocks_per_stage, classifier_head, conv1x1, conv3x3, require_positive

BOTTLENECK_FACTOR = 4


class DenseLayer(nn.Module):
    """Bottleneck layer whose ``growth`` new channels are appended to its input."""

    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        inner = BOTTLENECK_FACTOR * growth
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv1x1(in_channels, inner)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv2 = conv3x3(inner, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out), inplace=True))
        return torch.cat([x, out], dim=1)


def transition(in_channels: int, out_channels: int) -> nn.Sequential:
    """Compress the channels and halve the resolution between dense blocks."""
    activation = [nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*activation, conv1x1(in_channels, out_channels), nn.AvgPool2d(2))


def layers_per_block(depth: int, layers: Sequence[int] | None) -> list[int]:
    """The explicit ``layers`` if given, else three equal blocks for ``depth = 6n+4``."""
    if layers is None:
        return [blocks_per_stage(depth, offset=4)] * 3
    valid = isinstance(layers, Sequence) and not isinstance(layers, str) and len(layers) > 0
    if not valid or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in layers):
        raise ConfigError(
            f"model.layers: must be a non-empty list of positive layer counts per block, got {layers!r}"
        )
    return list(layers)


@register("densenet", "image")
def densenet(
    *,
    in_channels: int,
    num_classes: int,
    depth: int = 100,
    growth: int = 12,
    compression: float = 0.5,
    layers: list[int] | None = None,
) -> nn.Module:
    """DenseNet-BC-``depth``-``growth``; ``layers`` (per block) overrides ``depth``."""
    counts = layers_per_block(depth, layers)
    require_positive("growth", growth)
    if not isinstance(growth, int):
        raise ConfigError(f"model.growth: must be a whole number of channels, got {growth!r}")
    if isinstance(compression, bool) or not isinstance(compression, int | float) or not 0 < compression <= 1:
        raise ConfigError(f"model.compression: must be in (0, 1], got {compression!r}")
    channels = 2 * growth
    stem = conv3x3(in_channels, channels)
    body: list[nn.Module] = []
    for index, count in enumerate(counts):
        for _ in range(count):
            body.append(DenseLayer(channels, growth))
            channels += growth
        if index < len(counts) - 1:
            compressed = max(1, math.floor(compression * channels))
            body.append(transition(channels, compressed))
            channels = compressed
    return assemble(stem, nn.Sequential(*body), classifier_head(channels, num_classes, pre_activation=True))
