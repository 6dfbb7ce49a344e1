"""Random-resized crops for a whole batch on the device: torchvision's ``RandomResizedCrop``, vectorised.

Each image gets a box whose area is a ``scale`` share of the image and whose aspect ratio
(width / height) lies in ``ratio`` (uniform in log-space), drawn as torchvision draws it: up to
ten tries, the first that fits the image wins, else the centre crop of the ratio closest to the
image's own. The box is then resized back to the image's size by bilinear interpolation with
PyTorch's ``interpolate(mode="bilinear", align_corners=False)`` arithmetic (no antialiasing), by
indexing: one gather per corner for the whole batch, no per-image Python.
"""

from __future__ import annotations

import math

import torch

TRIES = 10  # torchvision's attempts before it falls back to the centre crop


def crop_boxes(count: int, height: int, width: int, scale: list[float], ratio: list[float],
               generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """[count, 4] int64 boxes (top, left, box height, box width), each as ``RandomResizedCrop.get_params``."""
    area = height * width
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    draws = torch.rand(count, TRIES, 2, generator=generator, device=device, dtype=torch.float64)
    target = area * (scale[0] + (scale[1] - scale[0]) * draws[..., 0])
    aspect = torch.exp(log_low + (log_high - log_low) * draws[..., 1])
    box_w = torch.round(torch.sqrt(target * aspect)).long()
    box_h = torch.round(torch.sqrt(target / aspect)).long()
    fits = (box_w > 0) & (box_w <= width) & (box_h > 0) & (box_h <= height)
    first = fits.long().argmax(1)  # the first try that fits (0 when none does: replaced below)
    rows = torch.arange(count, device=device)
    box_h, box_w = box_h[rows, first], box_w[rows, first]
    fallback_h, fallback_w = centre_box(height, width, ratio)
    found = fits.any(1)
    box_h = torch.where(found, box_h, fallback_h)
    box_w = torch.where(found, box_w, fallback_w)
    offsets = torch.rand(count, 2, generator=generator, device=device, dtype=torch.float64)
    top = torch.where(found, (offsets[:, 0] * (height - box_h + 1)).long(), (height - box_h) // 2)
    left = torch.where(found, (offsets[:, 1] * (width - box_w + 1)).long(), (width - box_w) // 2)
    return torch.stack([top, left, box_h, box_w], dim=1)


def centre_box(height: int, width: int, ratio: list[float]) -> tuple[int, int]:
    """torchvision's fallback: the whole image, narrowed to the nearest allowed aspect ratio."""
    own = width / height
    if own < min(ratio):
        return int(round(width / min(ratio))), width
    if own > max(ratio):
        return height, int(round(height * max(ratio)))
    return height, width


def resized_crops(images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Each image's box resized to the images' own size (float, in the images' value range)."""
    count, _, height, width = images.shape
    top, bottom, down = source_lines(boxes[:, 0], boxes[:, 2], height)
    left, right, across = source_lines(boxes[:, 1], boxes[:, 3], width)
    pixels = images.float()
    index = torch.arange(count, device=images.device)[:, None, None]

    def at(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:  # [N, H, W, C]
        return pixels[index, :, rows[:, :, None], cols[:, None, :]]

    across = across[:, None, :, None]
    upper = at(top, left) * (1 - across) + at(top, right) * across
    lower = at(bottom, left) * (1 - across) + at(bottom, right) * across
    down = down[:, :, None, None]
    return (upper * (1 - down) + lower * down).permute(0, 3, 1, 2)


def source_lines(start: torch.Tensor, length: torch.Tensor,
                 size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For output lines 0..size-1 of each box: the two source lines and the weight of the second.

    As ``upsample_bilinear2d`` with ``align_corners=False`` computes them inside the box:
    source = (line + 0.5) * length / size - 0.5, clamped at 0; the second line stays in the box.
    """
    scale = (length.float() / size)[:, None]
    source = (scale * (torch.arange(size, device=start.device) + 0.5) - 0.5).clamp(min=0)
    low = source.long()
    high = torch.minimum(low + 1, length[:, None] - 1)
    return start[:, None] + low, start[:, None] + high, source - low
