"""BiFPN fast normalised fusion (Tan et al., EfficientDet, CVPR 2020): learned non-negative weights per input.

``BiFPNConcat`` concatenates the weighted inputs (kind ``concat``: output width = sum of the inputs' widths, the fork
line ``c2 = sum(ch[x] for x in f)``); ``BiFPNAdd`` adds them, as the paper does (kind ``fuse``: inputs of one width,
output of that width). Both receive the list of input widths first, so the weights exist before training starts.
"""

from __future__ import annotations

import torch
from torch import nn


class _FastNormalizedWeights(nn.Module):
    """``relu(w) / (sum(relu(w)) + eps)``, one weight per input, all starting at 1."""

    def __init__(self, inputs: int, eps: float = 1e-4):
        super().__init__()
        self.w = nn.Parameter(torch.ones(inputs))
        self.eps = eps

    def forward(self) -> torch.Tensor:
        w = self.w.relu()
        return w / (w.sum() + self.eps)


class BiFPNConcat(nn.Module):
    """Weighted concatenation. YAML args (the input widths are filled in): ``[dimension=1]``."""

    yolo_like = "concat"

    def __init__(self, c1: list[int], dimension: int = 1):
        super().__init__()
        self.weights = _FastNormalizedWeights(len(c1))
        self.d = dimension

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        inputs = x if isinstance(x, list) else [x]
        w = self.weights()
        return torch.cat([w[i] * t for i, t in enumerate(inputs)], self.d)


class BiFPNAdd(nn.Module):
    """Weighted sum of inputs of one width. YAML args (the input widths are filled in): ``[]``."""

    yolo_like = "fuse"

    def __init__(self, c1: list[int]):
        super().__init__()
        self.weights = _FastNormalizedWeights(len(c1))

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        inputs = x if isinstance(x, list) else [x]
        w = self.weights()
        return sum(w[i] * t for i, t in enumerate(inputs))
