"""Switchable atrous convolution (SAConv, DetectoRS, Qiao et al. 2021) as a Conv-like Ultralytics module."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional
from ultralytics.nn.modules import Conv

from .flop_count import hooked_gflops

EPS = 1e-5  # weight standardisation: keeps the division finite for an all-constant filter


class SAConv(Conv):
    """Switchable atrous convolution: one weight-standardised kernel applied at dilation 1 and 3, mixed per pixel.

    ``y = act(bn(z + post(mean(z))))`` with ``z = s * conv(x', W, d=1) + (1 - s) * conv(x', W + dW, d=3)``, where
    ``x' = x + pre(mean(x))`` adds global context, ``W`` is standardised (zero mean, unit std per output filter)
    at every forward, ``dW`` is a learned difference for the large-dilation branch, the switch ``s`` is a 1x1 conv
    over a 5x5 average of ``x'`` (no sigmoid, as in DetectoRS), and ``post`` adds global context of the mixed output.

    YAML arguments (Conv-like, ``c1`` filled in by Ultralytics): ``[c2, k, s]``; ``k`` must be odd.

    Fusing: a ``Conv`` subclass, so Ultralytics' ``BaseModel.fuse()`` reaches it and runs
    ``m.conv = fuse_conv_and_bn(m.conv, m.bn)``; ``conv`` reads as the standardised d=1 branch, and assigning it
    folds BN into the whole module instead (``fuse_bn``): both standardised kernels are computed once, BN's scale
    and shift go onto the output and into the post-context conv. Then ``bn`` is removed and ``forward_fuse`` runs.

    Example:
        >>> SAConv(16, 32, 3, 2)(torch.zeros(1, 16, 32, 32)).shape
        torch.Size([1, 32, 16, 16])
    """

    # Pruning rule (integration.pruning_rules): left unpruned.
    # SAConv's switch and functional convolutions share one weight that a tracer cannot follow.
    yolo_pruning = False

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, act: bool | nn.Module = True):
        nn.Module.__init__(self)  # not Conv.__init__: SAConv has no single nn.Conv2d of its own
        if min(c1, c2, k, s) <= 0 or k % 2 == 0:
            raise ValueError(f"SAConv needs positive c1, c2, s and an odd k; got c1={c1}, c2={c2}, k={k}, s={s}")
        self.k, self.s = k, s
        self.weight = nn.Parameter(torch.empty(c2, c1, k, k))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Conv2d's own initialisation
        # Zero-initialised like DetectoRS, so both branches start from the same kernel
        self.weight_diff = nn.Parameter(torch.zeros(c2, c1, k, k))
        self.switch = nn.Conv2d(c1, 1, 1, s, bias=True)
        self.pre_context = nn.Conv2d(c1, c1, 1, bias=True)
        self.post_context = nn.Conv2d(c2, c2, 1, bias=True)
        for m in (self.switch, self.pre_context, self.post_context):
            nn.init.zeros_(m.weight)
        nn.init.constant_(self.switch.bias, 1.0)  # the switch starts fully on the d=1 branch
        nn.init.zeros_(self.pre_context.bias)
        nn.init.zeros_(self.post_context.bias)
        self.bn = nn.BatchNorm2d(c2)
        self.act = self.default_act if act is True else act if isinstance(act, nn.Module) else nn.Identity()

    def standardized_weight(self) -> torch.Tensor:
        """The kernel with zero mean and unit standard deviation per output filter (weight standardisation)."""
        w = self.weight
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        std = (w - mean).pow(2).mean(dim=(1, 2, 3), keepdim=True).add(EPS).sqrt()
        return (w - mean) / std

    def _switched(self, x: torch.Tensor, w_small: torch.Tensor, w_large: torch.Tensor) -> torch.Tensor:
        """Pre-context, then the per-pixel mix of the d=1 and d=3 convolutions."""
        x = x + self.pre_context(x.mean(dim=(2, 3), keepdim=True))
        # count_include_pad=False: border averages use real pixels only (DetectoRS reflect-pads, which fails on
        # feature maps smaller than the pad, e.g. P5 of a small image)
        switch = self.switch(functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False))
        p = self.k // 2
        small = functional.conv2d(x, w_small, stride=self.s, padding=p)
        large = functional.conv2d(x, w_large, stride=self.s, padding=3 * p, dilation=3)
        return switch * small + (1 - switch) * large

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Switched convolution, post-context, BN, activation; the kernel is standardised from the weights each time."""
        w = self.standardized_weight()
        z = self._switched(x, w, w + self.weight_diff)
        return self.act(self.bn(z + self.post_context(z.mean(dim=(2, 3), keepdim=True))))

    def forward_fuse(self, x: torch.Tensor) -> torch.Tensor:
        """The same function after ``fuse_bn``: precomputed kernels, BN folded into a scale and the post-context."""
        z = self._switched(x, self.w_small, self.w_large)
        return self.act(z * self.bn_scale + self.post_context(z.mean(dim=(2, 3), keepdim=True)))

    @property
    def conv(self) -> nn.Conv2d:
        """The d=1 branch as a stand-alone conv (a copy): what ``BaseModel.fuse()`` hands to ``fuse_conv_and_bn``."""
        conv = nn.Conv2d(self.weight.shape[1], self.weight.shape[0], self.k, self.s, self.k // 2, bias=False)
        conv.weight.data.copy_(self.standardized_weight().detach())
        return conv.to(self.weight.device)

    def __setattr__(self, name: str, value) -> None:
        # BaseModel.fuse() assigns m.conv while m.bn still exists; fold BN into this module's own parts instead
        if name == "conv" and isinstance(value, nn.Module):
            self.fuse_bn()
            return
        super().__setattr__(name, value)

    @torch.no_grad()
    def fuse_bn(self) -> None:
        """Fold BN in: ``bn(z + P(m)) = a*z + (a*W_P) m + (a*b_P + shift)``; exact, since BN is affine per channel."""
        if "bn" not in self._modules:
            return
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        w = self.standardized_weight()
        self.register_buffer("w_small", w.clone())
        self.register_buffer("w_large", w + self.weight_diff)
        self.register_buffer("bn_scale", scale.view(1, -1, 1, 1).clone())
        self.post_context.weight.mul_(scale.view(-1, 1, 1, 1))
        self.post_context.bias.copy_(self.post_context.bias * scale + shift)
        self.requires_grad_(False)


def saconv_gflops(model: nn.Module, imgsz: int) -> float:
    """GFLOPs of the two functional convolutions inside every SAConv of ``model``, which THOP cannot see.

    Ultralytics' ``get_flops`` counts modules; SAConv's main work is two ``functional.conv2d`` calls. Add this to it.
    """

    def flops(m, inp, out):
        c2, c1, k, _ = m.weight.shape
        return 2 * 2 * c1 * c2 * k * k * out.shape[-1] * out.shape[-2]  # 2 branches, 2 FLOPs per MAC

    return hooked_gflops(model, imgsz, SAConv, flops)
