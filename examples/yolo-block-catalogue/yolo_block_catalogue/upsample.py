"""A learned upsampler: nearest-neighbour upsampling plus a sub-pixel convolution residual (Shi et al., CVPR 2016).

Like DySample or CARAFE it keeps its input's channels and needs that width: kind ``attention``
(``c2 = ch[f]; args = [c2, *args]``). The residual's projection starts at zero, so training starts from exactly
nearest upsampling (what the stock ``nn.Upsample`` row did) and learns the rest.
"""

from __future__ import annotations

import torch
from torch import nn


class LearnedUpsample(nn.Module):
    """Upsample by ``scale``. YAML args (c1 is filled in): ``[scale=2]``; ``[-1, 1, LearnedUpsample, [2]]``."""

    yolo_like = "attention"

    def __init__(self, c1: int, scale: int = 2):
        super().__init__()
        self.nearest = nn.Upsample(scale_factor=scale, mode="nearest")
        self.project = nn.Conv2d(c1, c1 * scale * scale, 1)
        self.shuffle = nn.PixelShuffle(scale)
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nearest(x) + self.shuffle(self.project(x))
