"""SimAM (Yang et al., ICML 2021): parameter-free attention from an energy function over each channel's pixels."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from yolo_fasternet import is_exporting


class SimAM(nn.Module):
    """Each activation weighted by the sigmoid of its inverse energy (distinctness from its channel's mean).

    No parameters and no width: kind ``parameter_free`` (what forks leave to parse_model's final ``else: c2 = ch[f]``),
    arguments as written. YAML args: ``[e_lambda=1e-4]`` (the energy's regulariser).

    Export form (``yolo_fasternet.is_exporting()``, the hook for a registered module's export form): the per-channel
    means and sums over the pixels come from ``adaptive_avg_pool2d``, because pnnx's NCNN conversion of ``mean`` and
    ``sum`` over ``(2, 3)`` with ``keepdim`` broadcasts wrongly (pnnx 20260526, ncnn 1.0.20261020: a 1.5/10 error;
    docs/deploying.md). Equal to the eager form to float rounding.
    """

    yolo_like = "parameter_free"

    def __init__(self, e_lambda: float = 1e-4):
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[2] * x.shape[3]
        if is_exporting():
            d = (x - functional.adaptive_avg_pool2d(x, 1)).pow(2)
            variance = functional.adaptive_avg_pool2d(d, 1) * (n / max(n - 1, 1))
        else:
            d = (x - x.mean((2, 3), keepdim=True)).pow(2)
            variance = d.sum((2, 3), keepdim=True) / max(n - 1, 1)
        inverse_energy = d / (4 * (variance + self.e_lambda)) + 0.5
        return x * inverse_energy.sigmoid()
