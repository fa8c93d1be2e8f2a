"""C3k2_SPConv: Ultralytics' C3k2 (the YOLO11 block) whose bottleneck 3x3 convolutions are SPConv."""

from __future__ import annotations

from torch import nn
from ultralytics.nn.modules import C3, C2f

from .c2f_faster import check_csp_args
from .c2f_spconv import SPConvBottleneck
from .c3k2_faster import c3k2_inner_blocks


class C3k_SPConv(C3):  # noqa: N801 - follows Ultralytics' C3k spelling
    """C3k with SPConv bottlenecks: the inner CSP block C3k2_SPConv uses at m/l/x scales (``c3k=True``).

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        n (int): Number of SPConv bottlenecks.
        shortcut (bool): Residual connection inside each bottleneck.
        g (int): Accepted for C3 compatibility; only 1 is valid.
        e (float): Expansion ratio of the hidden channels.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5):
        check_csp_args("C3k_SPConv", c1, c2, n, g, e)
        super().__init__(c1, c2, n, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(SPConvBottleneck(c_, c_, shortcut, 1.0) for _ in range(n)))


class C3k2_SPConv(C2f):  # noqa: N801 - the YAML name follows Ultralytics' C3k2 spelling
    """C3k2 whose bottlenecks (or C3k blocks) use SPConv for their 3x3 convolutions.

    Same YAML arguments as Ultralytics 8.4's ``C3k2`` and scaled exactly like it: ``[c2, c3k, e, attn, g, shortcut]``
    with ``c1`` and the depth-scaled ``n`` filled in. The bottlenecks keep C3k2's hidden width (``e = 0.5`` inside);
    SPConv's 2-group conv needs even channel halves, which every YOLO11 scale gives.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        n (int): Number of inner blocks.
        c3k (bool): Use C3k_SPConv inner blocks instead of single bottlenecks.
        e (float): Expansion ratio: inner blocks run on ``int(c2 * e)`` channels.
        attn (bool): Follow each bottleneck with Ultralytics' PSABlock attention (YOLO26's last neck block).
        g (int): Accepted for C3k2 compatibility; only 1 is valid.
        shortcut (bool): Residual connections inside the inner blocks.
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        c3k: bool = False,
        e: float = 0.5,
        attn: bool = False,
        g: int = 1,
        shortcut: bool = True,
    ):
        check_csp_args("C3k2_SPConv", c1, c2, n, g, e)
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = c3k2_inner_blocks(self.c, n, c3k, attn, shortcut, _bottleneck, C3k_SPConv)


def _bottleneck(c: int, shortcut: bool) -> SPConvBottleneck:
    """C3k2's single inner block, with SPConv: Bottleneck(c, c, shortcut) keeps e = 0.5."""
    return SPConvBottleneck(c, c, shortcut, 0.5)
