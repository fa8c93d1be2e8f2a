"""C2fECA: Ultralytics' C2f followed by efficient channel attention (ECA-Net, Wang et al., CVPR 2020)."""

import torch
from torch import nn
from ultralytics.nn.modules import C2f


class C2fECA(nn.Module):
    """C2f, then each output channel reweighted by a 1D conv over the channels' global averages.

    YAML args (c1 is filled in, the depth-scaled n is passed third, exactly as for C2f): [c2, shortcut=False, g=1,
    e=0.5, k=3]. ``- [-1, 3, C2fECA, [256, True]]`` is scaled at every model scale like ``- [-1, 3, C2f, [256, True]]``.
    """

    yolo_like = "C2f"  # the built-in whose YAML scaling this module follows (read by yolo-fasternet)

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5, k: int = 3):
        super().__init__()
        self.c2f = C2f(c1, c2, n, shortcut, g, e)  # a C2f inside (not a subclass): export keeps the attention
        self.eca = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c2f(x)
        weights = self.eca(y.mean((2, 3)).unsqueeze(1)).sigmoid()  # (batch, 1, channels)
        return y * weights.transpose(1, 2).unsqueeze(-1)
