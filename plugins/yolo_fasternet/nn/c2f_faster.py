"""C2f_Faster: Ultralytics' C2f with its bottlenecks replaced by FasterNet blocks."""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import C2f, Conv

from .fasternet_block import FasterNetBlock
from .inference_layout import ChannelsLastInference


def check_csp_args(name: str, c1: int, c2: int, n: int, g: int, e: float) -> None:
    """Reject CSP-block arguments the FasterNet variants cannot honour, naming the block and the values."""
    if g != 1:
        raise ValueError(f"{name} has no grouped convolution: g must be 1, got g={g}")
    if min(c1, c2, n) <= 0 or e <= 0:
        raise ValueError(f"{name} needs positive c1, c2, n, e; got c1={c1}, c2={c2}, n={n}, e={e}")


def faster_block(c: int, shortcut: bool) -> FasterNetBlock:
    """A FasterNet block on ``c`` channels with the model's default activation, like every other neck layer."""
    return FasterNetBlock(c, c, act=Conv.default_act, shortcut=shortcut)


class C2f_Faster(ChannelsLastInference, C2f):  # noqa: N801 - the YAML name follows Ultralytics' C2f/C3k2 spelling
    """CSP block with two convolutions (C2f) whose ``n`` inner blocks are FasterNet blocks.

    Same constructor contract and YAML arguments as ``C2f``, and Ultralytics scales it exactly like ``C2f``:
    ``[c2, shortcut, g, e]`` in the YAML, with ``c1`` and the depth-scaled ``n`` filled in.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        n (int): Number of FasterNet blocks.
        shortcut (bool): Residual connection inside each FasterNet block.
        g (int): Accepted for C2f compatibility; FasterNet blocks have no grouped convolution, so only 1 is valid.
        e (float): Expansion ratio: the blocks run on ``int(c2 * e)`` channels.

    The blocks use the model's default activation (``Conv.default_act``, SiLU unless the YAML sets
    ``activation:``), like every other layer of the neck. Being a C2f subclass, it gets ``forward_split`` and the
    exporter's C2f handling for free.

    Example:
        >>> C2f_Faster(64, 64, 2, True)(torch.zeros(1, 64, 32, 32)).shape
        torch.Size([1, 64, 32, 32])
    """

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5):
        check_csp_args("C2f_Faster", c1, c2, n, g, e)
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = nn.ModuleList(faster_block(self.c, shortcut) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """C2f's forward, in the inference layout once fused (see ``inference_layout``)."""
        return super().forward(self.inference_layout(x))
