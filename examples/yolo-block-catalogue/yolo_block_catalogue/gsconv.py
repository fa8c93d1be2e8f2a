"""GSConv and VoVGSCSP (Li et al., "Slim-neck by GSConv", 2022): half dense conv, half depthwise, channels shuffled.

``GSConv`` is conv-like (kind: like ``Conv``, ``[c2, k, s]`` scaled with the model width); ``VoVGSCSP`` is a CSP block
with repeats (like ``C3``: ``[c2, shortcut]``, the depth-scaled ``n`` passed third).
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import Conv


class GSConv(nn.Module):
    """Dense conv to c2/2 channels, a 5x5 depthwise conv of those, both halves interleaved (shuffle of 2 groups).

    YAML args (c1 is filled in, c2 width-scaled): ``[c2, k=1, s=1, g=1, act=True]``.
    """

    yolo_like = "Conv"

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: bool = True):
        super().__init__()
        half = c2 // 2
        self.dense = Conv(c1, half, k, s, None, g, act=act)
        self.depthwise = Conv(half, half, 5, 1, None, half, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.dense(x)
        both = torch.stack([a, self.depthwise(a)], 2)  # (batch, half, 2, h, w): channel i of each half side by side
        return both.flatten(1, 2)


class GSBottleneck(nn.Module):
    """Two GSConvs (1x1 then 3x3) plus a 1x1 linear shortcut."""

    def __init__(self, c1: int, c2: int, e: float = 0.5):
        super().__init__()
        hidden = max(int(c2 * e), 2)
        self.gs = nn.Sequential(GSConv(c1, hidden, 1, 1), GSConv(hidden, c2, 3, 1, act=False))
        self.shortcut = Conv(c1, c2, 1, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gs(x) + self.shortcut(x)


class VoVGSCSP(nn.Module):
    """CSP block of ``n`` GSBottlenecks (one-shot aggregation). YAML args as C3's: ``[c2, shortcut=True, g=1, e=0.5]``.

    ``shortcut`` and ``g`` are accepted for C3's argument order; the GSBottleneck always has its linear shortcut.
    """

    yolo_like = "C3"

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5):
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(c1, hidden, 1, 1)
        self.m = nn.Sequential(*(GSBottleneck(hidden, hidden, e=1.0) for _ in range(n)))
        self.cv3 = Conv(2 * hidden, c2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat([self.m(self.cv1(x)), self.cv2(x)], 1))
