"""Wide-ResNet WRN-d-k of Zagoruyko & Komodakis (2016).

Depth ``d = 6n+4`` with ``n >= 1`` (10, 16, 22, 28, 40, ...): a 16-channel 3x3 stem,
three groups of ``n`` pre-activation blocks with ``16k``, ``32k`` and ``64k``
channels (strides 1, 2, 2), BN-ReLU, global average pooling and a linear layer.
The widen factor ``k`` may be fractional (group widths are rounded, at least 1),
so tiny students such as depth 10 with ``widen`` 0.5 work.  Dropout between the
two convolutions of each block is added only when ``dropout > 0``.

The BAN paper's students "WRN-1-1" and "WRN-4-0.5" do not fit ``6n+4`` as depths;
read as ``n`` blocks per group they are depth 10 and depth 28 (``n = 1`` and 4).
"""

from __future__ import annotations

from torch import nn

from ban.core.errors import ConfigError
from ban.nets import register
from ban.nets.resnet import blocks_per_stage, preact_network, require_positive

STEM_WIDTH = 16


@register("wrn", "image")
def wrn(
    *, in_channels: int, num_classes: int, depth: int = 28, widen: float = 10, dropout: float = 0.0
) -> nn.Module:
    """WRN-``depth``-``widen`` with dropout probability ``dropout`` inside each block."""
    blocks = blocks_per_stage(depth, offset=4)
    require_positive("widen", widen)
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ConfigError(f"model.dropout: must be a probability in [0, 1), got {dropout!r}")
    widths = [max(1, round(STEM_WIDTH * multiple * widen)) for multiple in (1, 2, 4)]
    return preact_network(in_channels, num_classes, STEM_WIDTH, widths, blocks, dropout)
