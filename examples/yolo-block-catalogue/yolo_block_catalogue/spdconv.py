"""SPD-Conv (Sunkara and Luo, ECML PKDD 2022): space-to-depth, then a non-strided conv, in place of a strided conv."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional
from ultralytics.nn.modules import Conv

from yolo_fasternet import is_exporting

OFFSETS = ((0, 0), (1, 0), (0, 1), (1, 1))  # (row, column) of each 2x2 patch's pixel, in the order concatenated


def space_to_depth_kernel(c: int) -> torch.Tensor:
    """Weights of a stride-2 2x2 conv that copy pixel ``OFFSETS[k]`` of channel ``i`` to channel ``k * c + i``."""
    kernel = torch.zeros(len(OFFSETS) * c, c, 2, 2)
    channels = torch.arange(c)
    for k, (r, q) in enumerate(OFFSETS):  # plain indexing: it also builds on the meta device (torch 2.0 included)
        kernel[k * c + channels, channels, r, q] = 1.0
    return kernel


class SPDConv(nn.Module):
    """Halve height and width without discarding pixels (each 2x2 patch to 4 channels), then a stride-1 Conv.

    Conv-like (like ``Conv``). YAML args (c1 is filled in, c2 width-scaled): ``[c2, k=3]``; ``[-1, 1, SPDConv, [128]]``
    replaces ``[-1, 1, Conv, [128, 3, 2]]``. Height and width must be even.

    Export form (``yolo_fasternet.is_exporting()``): the four strided slices become one stride-2 convolution with
    one-hot weights (exact: each output is one input times 1), because pnnx's NCNN conversion drops slice steps ("slice
    with step 2 is not supported") and the NCNN model then computes wrong shapes.
    """

    yolo_like = "Conv"

    def __init__(self, c1: int, c2: int, k: int = 3):
        super().__init__()
        self.conv = Conv(4 * c1, c2, k, 1)
        self.register_buffer("space_to_depth", space_to_depth_kernel(c1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if is_exporting():
            kernel = getattr(self, "space_to_depth", None)
            if kernel is None:  # a module unpickled from a checkpoint made before the export form
                kernel = space_to_depth_kernel(x.shape[1])
            return self.conv(functional.conv2d(x, kernel.to(x.dtype), stride=2))
        patches = [x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]]
        return self.conv(torch.cat(patches, 1))
