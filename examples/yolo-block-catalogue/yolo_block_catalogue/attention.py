"""Channel attention (squeeze-and-excitation, Hu et al., CVPR 2018) and CBAM (Woo et al., ECCV 2018).

Both keep their input's channels and need that width to build: kind ``attention`` (the fork line
``c2 = ch[f]; args = [c2, *args]``), so the YAML row gives only the hyper-parameters: ``[-1, 1, SE, [16]]``.
"""

from __future__ import annotations

import torch
from torch import nn


class SE(nn.Module):
    """Squeeze-and-excitation: each channel of the input reweighted by a gate computed from global averages.

    YAML args (c1 is filled in): ``[reduction=16]``. On a row with a list ``from`` (``[[-1, 6], 1, SE, [16]]``) it
    receives the tensors and their widths as a list: the gates are computed from all inputs' averages and applied to
    the first input, whose shape the output keeps (attention guided by another scale).
    """

    yolo_like = "attention"

    def __init__(self, c1: int | list[int], reduction: int = 16):
        super().__init__()
        widths = c1 if isinstance(c1, list) else [c1]
        hidden = max(sum(widths) // reduction, 8)
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.excite = nn.Sequential(
            nn.Conv2d(sum(widths), hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, widths[0], 1), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        inputs = x if isinstance(x, list) else [x]
        return inputs[0] * self.excite(torch.cat([self.squeeze(t) for t in inputs], 1))


class CBAM(nn.Module):
    """Convolutional block attention: channel gates (shared MLP over average and max pooling), then a spatial gate.

    YAML args (c1 is filled in): ``[kernel_size=7, reduction=16]``; ``[-2, 1, CBAM, [7]]`` reweights layer -2.
    """

    yolo_like = "attention"

    def __init__(self, c1: int, kernel_size: int = 7, reduction: int = 16):
        super().__init__()
        hidden = max(c1 // reduction, 8)
        self.mlp = nn.Sequential(nn.Conv2d(c1, hidden, 1, bias=False), nn.ReLU(inplace=True), nn.Conv2d(hidden, c1, 1))
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        x = x * channel.sigmoid()
        spatial = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * self.spatial(spatial).sigmoid()
