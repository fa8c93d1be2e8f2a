"""SimAM (Yang et al., ICML 2021): parameter-free attention from an energy function over each channel's pixels."""

from __future__ import annotations

import torch
from torch import nn


class SimAM(nn.Module):
    """Each activation weighted by the sigmoid of its inverse energy (distinctness from its channel's mean).

    No parameters and no width: kind ``parameter_free`` (what forks leave to parse_model's final ``else: c2 = ch[f]``),
    arguments as written. YAML args: ``[e_lambda=1e-4]`` (the energy's regulariser).
    """

    yolo_like = "parameter_free"

    def __init__(self, e_lambda: float = 1e-4):
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean((2, 3), keepdim=True)).pow(2)
        inverse_energy = d / (4 * (d.sum((2, 3), keepdim=True) / max(pixels, 1) + self.e_lambda)) + 0.5
        return x * inverse_energy.sigmoid()
