"""ImageNet ResNets (He et al. 2015, torchvision's definition): a 7x7 stride-2 stem and max pooling, then
four stages, for large images (``data.image_size`` of 128 px and up), not for 32x32 CIFAR.

The network is torchvision's own ``resnet18/34/50/101/152`` (11,689,512 parameters for ResNet-18 with
1,000 classes), so a checkpoint moves between the two; only a stem for other than three input channels
is replaced.
"""

from __future__ import annotations

from torch import nn

from ban.core.errors import ConfigError
from ban.nets import register

DEPTHS = (18, 34, 50, 101, 152)


@register("imagenet_resnet", "image")
def imagenet_resnet(in_channels: int, num_classes: int, depth: int = 18) -> nn.Module:
    if depth not in DEPTHS:
        raise ConfigError(f"model.depth: {depth!r} is not an ImageNet ResNet depth; use one of "
                          f"{', '.join(map(str, DEPTHS))}")
    from torchvision import models  # here, not at import: torchvision takes seconds to load

    model = getattr(models, f"resnet{depth}")(num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model
