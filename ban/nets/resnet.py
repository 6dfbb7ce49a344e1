"""CIFAR ResNets of He et al.: the original (2015) and the pre-activation (2016) variant.

Both have depth ``6n+2``: a 3x3 stem, three stages of ``n`` two-conv basic blocks
(strides 1, 2, 2) and a linear classifier after global average pooling, so any
input size and channel count works (1x8x8 digits end at 2x2, 32x32 CIFAR at 8x8).

``width`` is the number of channels of the first stage, in channels (not a
multiplier); the stages have ``width``, ``2*width`` and ``4*width`` channels.
ResNet-20/56 use width 16.  The BAN paper's "Pre-ResNet-14-0.5" (depth 14, width
multiplier 0.5 of the usual 16) is ``preact_resnet`` with depth 14 and width 8.

The original ResNet uses the parameter-free shortcut ("option A": subsample and
zero-pad the new channels) of the CIFAR experiments, which gives the published
0.27M / 0.85M parameters of ResNet-20 / ResNet-56.  The pre-activation ResNet uses
a 1x1 convolution where the shape changes, as in He et al. 2016.

The helpers shared by the other families (depth check, stem, head, init) live here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ban.core.errors import ConfigError
from ban.nets import register

BlockFactory = Callable[[int, int, int], nn.Module]


def blocks_per_stage(depth: int, offset: int) -> int:
    """The ``n`` of a depth ``6n+offset`` network, or a ConfigError naming ``model.depth``."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 6 + offset or (depth - offset) % 6:
        examples = ", ".join(str(6 * n + offset) for n in (1, 2, 3, 9))
        raise ConfigError(
            f"model.depth: {depth!r} is not of the form 6n+{offset} with n >= 1; use e.g. {examples}"
        )
    return (depth - offset) // 6


def require_positive(key: str, value: float) -> None:
    """Reject a size option that is not a positive number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"model.{key}: must be a positive number, got {value!r}")


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def make_stages(block: BlockFactory, in_channels: int, widths: Sequence[int], blocks: int) -> nn.Sequential:
    """Stages of ``blocks`` blocks each; every stage after the first halves the resolution."""
    stages = []
    for index, width in enumerate(widths):
        layers = []
        for position in range(blocks):
            stride = 2 if index > 0 and position == 0 else 1
            layers.append(block(in_channels, width, stride))
            in_channels = width
        stages.append(nn.Sequential(*layers))
    return nn.Sequential(*stages)


class GlobalAveragePool(nn.Module):
    """``AdaptiveAvgPool2d(1)`` as a mean: the same numbers, and a backward pass that CUDA computes
    deterministically (``AdaptiveAvgPool2d``'s has no deterministic kernel, so ``train.deterministic``
    would refuse every image network)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


def classifier_head(channels: int, num_classes: int, pre_activation: bool) -> nn.Sequential:
    """Global average pooling and a linear layer; pre-activation nets first apply BN-ReLU."""
    activation = [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)] if pre_activation else []
    return nn.Sequential(
        *activation, GlobalAveragePool(), nn.Flatten(), nn.Linear(channels, num_classes)
    )


def init_weights(model: nn.Module) -> None:
    """Standard CIFAR init: Kaiming-normal convs (fan out), BN weight 1 bias 0, zero linear bias.

    None on the meta device (a network built only to count its parameters and FLOPs): there a random
    draw sets nothing and its first call imports torch's compiler, over a second of a command's start."""
    if any(parameter.is_meta for parameter in model.parameters()):
        return
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)


def assemble(stem: nn.Module, body: nn.Module, head: nn.Module) -> nn.Sequential:
    """The network ``stem -> body -> head``, initialised."""
    model = nn.Sequential(OrderedDict(stem=stem, body=body, head=head))
    init_weights(model)
    return model


class PadShortcut(nn.Module):
    """Parameter-free shortcut: subsample by ``stride`` and zero-pad the extra channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x


class BasicBlock(nn.Module):
    """Original block: conv-BN-ReLU-conv-BN, add the shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = PadShortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class PreActBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv-BN-ReLU-(dropout)-conv, add the shortcut.

    Where the shape changes, the 1x1 projection shortcut reads the activated input,
    as in the pre-activation ResNet and Wide-ResNet reference code.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv3x3(out_channels, out_channels)
        reshapes = stride != 1 or in_channels != out_channels
        self.projection = conv1x1(in_channels, out_channels, stride) if reshapes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        shortcut = x if self.projection is None else self.projection(activated)
        out = self.conv1(activated)
        out = self.conv2(self.dropout(F.relu(self.bn2(out), inplace=True)))
        return out + shortcut


def preact_network(
    in_channels: int, num_classes: int, stem_width: int, widths: Sequence[int], blocks: int, dropout: float
) -> nn.Sequential:
    """A pre-activation residual network (shared by ``preact_resnet`` and ``wrn``)."""

    def block(block_in: int, block_out: int, stride: int) -> nn.Module:
        return PreActBlock(block_in, block_out, stride, dropout)

    return assemble(
        conv3x3(in_channels, stem_width),
        make_stages(block, stem_width, widths, blocks),
        classifier_head(widths[-1], num_classes, pre_activation=True),
    )


def stage_widths(width: int) -> list[int]:
    require_positive("width", width)
    if not isinstance(width, int):
        raise ConfigError(f"model.width: must be a whole number of channels, got {width!r}")
    return [width, 2 * width, 4 * width]


@register("resnet", "image")
def resnet(*, in_channels: int, num_classes: int, depth: int = 20, width: int = 16) -> nn.Module:
    """CIFAR ResNet-``depth`` (depth 6n+2) with ``width`` channels in the first stage."""
    blocks = blocks_per_stage(depth, offset=2)
    widths = stage_widths(width)
    stem = nn.Sequential(conv3x3(in_channels, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
    return assemble(
        stem,
        make_stages(BasicBlock, width, widths, blocks),
        classifier_head(widths[-1], num_classes, pre_activation=False),
    )


@register("preact_resnet", "image")
def preact_resnet(*, in_channels: int, num_classes: int, depth: int = 20, width: int = 16) -> nn.Module:
    """Pre-activation ResNet-``depth`` (depth 6n+2) with ``width`` channels in the first stage."""
    blocks = blocks_per_stage(depth, offset=2)
    widths = stage_widths(width)
    return preact_network(in_channels, num_classes, width, widths, blocks, dropout=0.0)
