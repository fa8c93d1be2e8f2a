"""SPConv: "Split to Be Slim" (Zhang et al., IJCAI 2020), as a Conv-like Ultralytics module."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional
from ultralytics.nn.modules import Conv

from .inference_layout import is_exporting


class SPConv(nn.Module):
    """Split convolution: a representative part of the channels gets a 3x3 conv, the rest a cheap 1x1 conv.

    The arithmetic of the reference code (``SPConv_3x3`` in qiulinzhang/SPConv.pytorch, ``code/resnet_sp.py``), for
    input ``x`` with ``c1`` channels, ``r = int(c1 * ratio)``:

    - representative part ``x[:, :r]``: a 3x3 group-wise conv (2 groups, stride ``s``, padding 1) plus a 1x1 conv
      (after a 2x2 average pool when ``s == 2``), summed, then BatchNorm -> ``u``;
    - redundant part ``x[:, r:]``: 2x2 average pool when ``s == 2``, a 1x1 conv *with bias*, then BatchNorm -> ``v``;
    - parameter-free fusion: per sample and output channel, ``softmax(mean_hw(u), mean_hw(v))`` weights ``u`` and ``v``.

    Both parts produce all ``c2`` output channels (the reference computes an output split ``outplanes * ratio`` but
    never uses it; the paper's figure suggests split outputs; the code is followed). The reference has no norm or
    activation after the fusion; its ResNet bottleneck follows SPConv with BatchNorm and ReLU. Like Ultralytics'
    ``Conv`` (which it replaces), this module ends with that BatchNorm and the model's activation, so
    ``SPConv(c1, c2, s)`` is a drop-in for ``Conv(c1, c2, 3, s)``.

    Constraints of the reference (each a one-line ``ValueError``): ``r`` and ``c2`` even (2 groups), ``r >= 2`` and
    ``c1 - r >= 1``, stride 1 or 2 (other strides would misalign the two branches), and at stride 2 an even input
    height and width (the 3x3 conv rounds odd sizes up, the average pool down).

    YAML arguments (Conv-like, ``c1`` filled in by Ultralytics): ``[c2, s, ratio]``.

    Inference form (``switch_to_deploy()``, called by ``model.fuse()``): each branch's BatchNorm is folded into its
    convolutions (the fusion weights depend on the data, so the two branch BNs are folded separately), and the final
    BatchNorm into both branches, its scale undone for the mixing logits (exact, see ``_fold_final_bn``).

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        s (int): Stride, 1 or 2.
        ratio (float): Fraction of input channels in the representative (3x3) part, in (0, 1).
        act (bool | nn.Module): The activation after the final BN: True for the model default (as ``Conv``).

    Example:
        >>> SPConv(32, 64, 2)(torch.zeros(1, 32, 16, 16)).shape
        torch.Size([1, 64, 8, 8])
    """

    # Pruning rule (integration.pruning_rules): the output channels are pruned (both branches, their norms, the
    # per-channel mixing and the final norm lose the same channels; DepGraph removes them evenly from the 2-group
    # conv's two groups); the input channels stay, so the split sizes c3 and c1x1 stay as built. Not the inputs:
    # the 2-group conv needs its inputs removed evenly from both groups, and Torch-Pruning 1.6.1 applies that
    # grouping across the split in front of it, cutting into the representative part.
    def yolo_pruning_kept_inputs(self) -> tuple[nn.Module, ...]:
        """Every convolution keeps its input channels: the split at ``c3`` stays where it was built."""
        return (self.gwc, self.pwc, self.conv_1x1)

    def __init__(self, c1: int, c2: int, s: int = 1, ratio: float = 0.5, act: bool | nn.Module = True):
        super().__init__()
        if isinstance(s, bool) or s not in (1, 2):
            raise ValueError(f"SPConv stride must be 1 or 2 (as in the reference), got s={s!r}")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
            raise ValueError(f"SPConv ratio must be a number in (0, 1), got ratio={ratio!r}")
        if min(c1, c2) <= 0:
            raise ValueError(f"SPConv needs positive channels, got c1={c1}, c2={c2}")
        c3 = int(c1 * ratio)
        if c3 < 2 or c3 % 2 or c2 % 2:
            raise ValueError(
                f"SPConv's 2-group 3x3 conv needs an even, non-zero int(c1 * ratio) and an even c2; "
                f"got c1={c1}, ratio={ratio} (int(c1 * ratio)={c3}), c2={c2}"
            )
        if c1 - c3 < 1:
            raise ValueError(f"SPConv leaves no channels for its 1x1 part: c1={c1}, ratio={ratio}")
        self.c3, self.c1x1, self.s, self.ratio = c3, c1 - c3, s, ratio
        self.gwc = nn.Conv2d(c3, c2, 3, s, 1, groups=2, bias=False)
        self.pwc = nn.Conv2d(c3, c2, 1, bias=False)
        self.bn_3x3 = nn.BatchNorm2d(c2)
        self.conv_1x1 = nn.Conv2d(self.c1x1, c2, 1, bias=True)
        self.bn_1x1 = nn.BatchNorm2d(c2)
        self.bn = nn.BatchNorm2d(c2)
        self.register_buffer("logit_scale", None)  # set when the final BN is folded into the branches (deploy)
        self.act = Conv.default_act if act is True else act if isinstance(act, nn.Module) else nn.Identity()

    def _check_input(self, x: torch.Tensor) -> None:
        """At stride 2 the two branches only align on even sizes; say so instead of a shape mismatch deep inside."""
        if self.s == 2 and not is_exporting() and (x.shape[-2] % 2 or x.shape[-1] % 2):
            where = f"layer {self.i} " if hasattr(self, "i") else ""
            raise ValueError(
                f"{where}SPConv (stride 2) needs an even input height and width, got {x.shape[-2]}x{x.shape[-1]}"
            )

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised branch outputs: ``u`` (3x3 + 1x1 on the representative part), ``v`` (1x1 on the rest)."""
        self._check_input(x)
        x3, x1 = torch.split(x, [self.c3, self.c1x1], dim=1)
        if self.s == 2:
            u = self.gwc(x3) + self.pwc(functional.avg_pool2d(x3, 2, 2))
            x1 = functional.avg_pool2d(x1, 2, 2)
        else:
            u = self.gwc(x3) + self.pwc(x3)
        return self.bn_3x3(u), self.bn_1x1(self.conv_1x1(x1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Both branches, mixed per channel by the softmax of their global means, then BN and activation."""
        u, v = self.branches(x)
        gu, gv = u.mean((2, 3)), v.mean((2, 3))
        if self.logit_scale is not None:  # deploy form: u, v carry the final BN; undo its scale for the mixing logits
            gu, gv = gu * self.logit_scale, gv * self.logit_scale
        weights = torch.softmax(torch.stack((gu, gv), dim=2), dim=2)
        mixed = u * weights[..., 0, None, None] + v * weights[..., 1, None, None]
        return self.act(self.bn(mixed))

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold each branch's BatchNorm into that branch's convolutions (exact in eval mode); idempotent."""
        if isinstance(self.bn_3x3, nn.Identity):
            return
        scale, shift = _bn_affine(self.bn_3x3)
        self.gwc.weight.mul_(scale.view(-1, 1, 1, 1))
        self.pwc.weight.mul_(scale.view(-1, 1, 1, 1))
        self.gwc.bias = nn.Parameter(shift.clone(), requires_grad=self.gwc.weight.requires_grad)
        scale, shift = _bn_affine(self.bn_1x1)
        self.conv_1x1.weight.mul_(scale.view(-1, 1, 1, 1))
        self.conv_1x1.bias.copy_(self.conv_1x1.bias * scale + shift)
        self.bn_3x3, self.bn_1x1 = nn.Identity(), nn.Identity()
        self._fold_final_bn()

    @torch.no_grad()
    def _fold_final_bn(self) -> None:
        """Move the final BN ``a * y + b`` into both branches (exact: the mixing weights sum to 1).

        ``a * (w u + (1 - w) v) + b = w (a u + b) + (1 - w) (a v + b)``; the weights come from the softmax of the
        branch means, which is unchanged by the common shift ``b`` and needs the scale undone (``logit_scale = 1/a``).
        Kept as it is where a channel's ``|a| < 1e-2``: dividing by it would amplify rounding in the logits.
        """
        scale, shift = _bn_affine(self.bn)
        if not bool((scale.abs() >= 1e-2).all()):
            return
        for conv in (self.gwc, self.pwc, self.conv_1x1):
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
        self.gwc.bias.copy_(self.gwc.bias * scale + shift)
        self.conv_1x1.bias.copy_(self.conv_1x1.bias * scale + shift)
        self.logit_scale = 1.0 / scale
        self.bn = nn.Identity()


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel scale and shift an eval-mode BatchNorm applies."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale
