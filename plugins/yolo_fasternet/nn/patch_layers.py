"""FasterNet's stem (patch embedding) and its downsampling layer (patch merging), as fusable Ultralytics Convs."""

from __future__ import annotations

import torch
from ultralytics.nn.modules import Conv

from .inference_layout import ChannelsLastInference


class _FasterNetConv(ChannelsLastInference, Conv):
    """A BN-folding Ultralytics Conv that, once fused, hands channels-last activations on (``inference_layout``)."""

    def forward_fuse(self, x: torch.Tensor) -> torch.Tensor:
        """The fused forward (conv only), in the inference layout."""
        return super().forward_fuse(self.inference_layout(x))


class PatchEmbed(_FasterNetConv):
    """FasterNet stem: a ``k x k`` convolution with stride ``k`` and no padding, then BN, no activation.

    YAML arguments (Conv-like, ``c1`` filled in by Ultralytics): ``[c2, k]``; ``k=4`` gives FasterNet's stride-4 stem.
    Built on Ultralytics ``Conv``, so ``model.fuse()`` folds its BN.

    Example:
        >>> PatchEmbed(3, 40, 4)(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 40, 16, 16])
    """

    def __init__(self, c1: int, c2: int, k: int = 4):
        if min(c1, c2, k) <= 0:
            raise ValueError(f"PatchEmbed needs positive c1, c2, k; got c1={c1}, c2={c2}, k={k}")
        super().__init__(c1, c2, k, k, 0, act=False)


class PatchMerging(_FasterNetConv):
    """FasterNet merging layer between stages: ``k x k`` convolution with stride ``k`` (no padding), then BN.

    YAML arguments (Conv-like, ``c1`` filled in by Ultralytics): ``[c2, k]``; FasterNet uses ``k=2`` and ``c2 = 2*c1``.
    Built on Ultralytics ``Conv``, so ``model.fuse()`` folds its BN.

    Example:
        >>> PatchMerging(40, 80)(torch.zeros(1, 40, 16, 16)).shape
        torch.Size([1, 80, 8, 8])
    """

    def __init__(self, c1: int, c2: int, k: int = 2):
        if min(c1, c2, k) <= 0:
            raise ValueError(f"PatchMerging needs positive c1, c2, k; got c1={c1}, c2={c2}, k={k}")
        super().__init__(c1, c2, k, k, 0, act=False)
