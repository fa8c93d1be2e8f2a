"""C3k2_Faster: Ultralytics' C3k2 (the YOLO11/YOLO26 block) with its bottlenecks replaced by FasterNet blocks."""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import C3, C2f
from ultralytics.nn.modules.block import PSABlock

from .c2f_faster import check_csp_args, faster_block
from .inference_layout import ChannelsLastInference


class C3k_Faster(C3):  # noqa: N801 - follows Ultralytics' C3k spelling
    """C3k with FasterNet blocks: the inner CSP block C3k2_Faster uses at m/l/x scales (``c3k=True``).

    Not a YAML row of its own in the bundled models (C3k2_Faster builds it), but usable as one with C3's arguments.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        n (int): Number of FasterNet blocks.
        shortcut (bool): Residual connection inside each block.
        g (int): Accepted for C3 compatibility; only 1 is valid.
        e (float): Expansion ratio of the hidden channels.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5):
        check_csp_args("C3k_Faster", c1, c2, n, g, e)
        super().__init__(c1, c2, n, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(faster_block(c_, shortcut) for _ in range(n)))


def c3k2_inner_blocks(c: int, n: int, c3k: bool, attn: bool, shortcut: bool, block, csp) -> nn.ModuleList:
    """C3k2's ``n`` inner blocks on ``c`` channels: ``block(c, shortcut)``, CSP block ``csp`` (c3k), or block + PSA."""
    return nn.ModuleList(
        nn.Sequential(block(c, shortcut), PSABlock(c, attn_ratio=0.5, num_heads=max(c // 64, 1)))
        if attn
        else csp(c, c, 2, shortcut)
        if c3k
        else block(c, shortcut)
        for _ in range(n)
    )


class C3k2_Faster(ChannelsLastInference, C2f):  # noqa: N801 - the YAML name follows Ultralytics' C3k2 spelling
    """C3k2 whose inner blocks are FasterNet blocks (or C3k_Faster, or FasterNet block + PSA attention).

    Same YAML arguments as Ultralytics 8.4's ``C3k2``, and scaled exactly like it, including the switch to
    ``c3k=True`` at scales m/l/x: ``[c2, c3k, e, attn, g, shortcut]`` with ``c1`` and the depth-scaled ``n`` filled in.
    (Ultralytics 8.3.x's C3k2 has no ``attn``; YAMLs that stop at ``e``, as YOLO11's do, read the same on both.)

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        n (int): Number of inner blocks.
        c3k (bool): Use C3k_Faster inner blocks (two FasterNet blocks in a CSP block) instead of single blocks.
        e (float): Expansion ratio: inner blocks run on ``int(c2 * e)`` channels.
        attn (bool): Follow each FasterNet block with Ultralytics' PSABlock attention (YOLO26's last neck block).
        g (int): Accepted for C3k2 compatibility; only 1 is valid.
        shortcut (bool): Residual connections inside the inner blocks.

    Example:
        >>> C3k2_Faster(64, 64, 2, False, 0.25)(torch.zeros(1, 64, 32, 32)).shape
        torch.Size([1, 64, 32, 32])
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
        check_csp_args("C3k2_Faster", c1, c2, n, g, e)
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = c3k2_inner_blocks(self.c, n, c3k, attn, shortcut, faster_block, C3k_Faster)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """C2f's forward, in the inference layout once fused (see ``inference_layout``)."""
        return super().forward(self.inference_layout(x))
