"""C2f_SPConv: Ultralytics' C2f whose bottleneck 3x3 convolutions are SPConv, as SPConv's paper does in ResNet."""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import C2f

from .c2f_faster import check_csp_args
from .spconv import SPConv


class SPConvBottleneck(nn.Module):
    """Ultralytics' ``Bottleneck`` with both 3x3 ``Conv`` layers replaced by ``SPConv`` (BN and activation included).

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        shortcut (bool): Add the input (only when ``c1 == c2``, as ``Bottleneck``).
        e (float): Hidden channels ``int(c2 * e)``.
        ratio (float): SPConv's representative fraction.
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 1.0, ratio: float = 0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = SPConv(c1, c_, 1, ratio)
        self.cv2 = SPConv(c_, c2, 1, ratio)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Two SPConvs, plus the residual when it applies."""
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f_SPConv(C2f):  # noqa: N801 - the YAML name follows Ultralytics' C2f spelling
    """CSP block with two convolutions (C2f) whose ``n`` bottlenecks use SPConv for their two 3x3 convolutions.

    Same constructor contract and YAML arguments as ``C2f`` (``[c2, shortcut, g, e]``, ``c1`` and the depth-scaled
    ``n`` filled in by Ultralytics), and scaled exactly like it. SPConv has no grouped form, so ``g`` must be 1; its
    2-group 3x3 conv needs ``int(c2 * e)`` to be a multiple of 4 (true for every width Ultralytics' scaling gives
    with ``e = 0.5``). The bottlenecks run on ``int(c2 * e)`` channels with ``e = 1.0`` inside, as C2f's do.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        n (int): Number of SPConv bottlenecks.
        shortcut (bool): Residual connection inside each bottleneck.
        g (int): Accepted for C2f compatibility; only 1 is valid.
        e (float): Expansion ratio of the hidden channels.

    Example:
        >>> C2f_SPConv(64, 64, 2, True)(torch.zeros(1, 64, 16, 16)).shape
        torch.Size([1, 64, 16, 16])
    """

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5):
        check_csp_args("C2f_SPConv", c1, c2, n, g, e)
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = nn.ModuleList(SPConvBottleneck(self.c, self.c, shortcut, 1.0) for _ in range(n))
