"""SPD-Conv (Sunkara and Luo, ECML PKDD 2022): space-to-depth, then a non-strided conv, in place of a strided conv."""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import Conv


class SPDConv(nn.Module):
    """Halve height and width without discarding pixels (each 2x2 patch to 4 channels), then a stride-1 Conv.

    Conv-like (like ``Conv``). YAML args (c1 is filled in, c2 width-scaled): ``[c2, k=3]``; ``[-1, 1, SPDConv, [128]]``
    replaces ``[-1, 1, Conv, [128, 3, 2]]``. Height and width must be even.
    """

    yolo_like = "Conv"

    def __init__(self, c1: int, c2: int, k: int = 3):
        super().__init__()
        self.conv = Conv(4 * c1, c2, k, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = [x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]]
        return self.conv(torch.cat(patches, 1))
