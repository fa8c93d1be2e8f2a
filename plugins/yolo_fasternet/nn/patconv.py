"""PATConv: PartialNet's partial convolution whose untouched channels go through a cheap attention (arXiv 2502.01303).

Follows the reference code (haiduo/PartialNet, ``models/partialnet.py``: ``Partial_conv3`` with ``use_attn`` on,
``SRM``); where it differs from the paper's text, the code is followed and the difference named below.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from .inference_layout import is_exporting
from .rpe_attention import LayerNorm2d, RPEAttention

PATCONV_ATTENTION = ("channel", "self")


def unbiased_std(flat: torch.Tensor) -> torch.Tensor:
    """``flat.std(-1)`` (Bessel-corrected) from means, squares and a square root: ops every edge converter has."""
    n = flat.shape[-1]
    deviation = flat - flat.mean(-1, keepdim=True)
    return torch.sqrt((deviation * deviation).mean(-1) * (n / (n - 1)))


class StyleChannelAttention(nn.Module):
    """The reference's ``SRM`` (style-based recalibration): a channel gate from each channel's mean and std.

    ``g = hardsigmoid(BN(W * [mean_hw(x), std_hw(x)]))`` and the output is ``x * g``, where ``std`` is the unbiased
    standard deviation over the pixels and ``W`` is a ``(1, 2)`` convolution over all channels (``groups=1`` in the
    reference code, unlike the channel-wise integration of the SRM paper). The unbiased std needs at least two
    pixels; a 1x1 map is a one-line error (the reference would return NaN). A training batch of a single sample
    normalises with the running statistics (the reference's BN would raise on one value per channel).

    Inference form (``switch_to_deploy()``): the BN is folded into ``W`` (which then has a bias).

    Export form (while traced or exported, ``is_exporting()``): the std is written out as
    ``sqrt(sum((x - mean)^2) / (n - 1))`` (``unbiased_std``), because ``torch.std`` has no NCNN layer (pnnx keeps it
    as ``torch.std`` and ncnn then loads nothing); equal to ``torch.std`` to float rounding (tested).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.cfc = nn.Conv2d(channels, channels, (1, 2), bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate each channel of ``x`` by its style statistics."""
        b, c, h, w = x.shape
        if not is_exporting() and h * w < 2:
            raise ValueError(f"PATConv channel attention needs at least 2 pixels for its unbiased std, got {h}x{w}")
        flat = x.reshape(b, c, -1)
        std = unbiased_std(flat) if is_exporting() else flat.std(-1)
        style = torch.stack((flat.mean(-1), std), dim=-1).unsqueeze(2)  # (B, C, 1, 2)
        return x * self.gate(self._normalise(self.cfc(style)))

    def _normalise(self, z: torch.Tensor) -> torch.Tensor:
        """The BN of the reference; a training batch of one sample (one value per channel) uses the running statistics.

        Batch statistics of a single value are undefined (``nn.BatchNorm2d`` raises). Ultralytics before 8.3.x's
        switch to an eval-mode stride probe builds every model with such a forward pass in training mode.
        """
        if isinstance(self.bn, nn.BatchNorm2d) and self.training and z.shape[0] == 1:
            bn = self.bn
            return functional.batch_norm(z, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        return self.bn(z)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the BN into the (1, 2) convolution; idempotent."""
        if isinstance(self.bn, nn.Identity):
            return
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        self.cfc.weight.mul_(scale.view(-1, 1, 1, 1))
        self.cfc.bias = nn.Parameter(bn.bias - bn.running_mean * scale, requires_grad=self.cfc.weight.requires_grad)
        self.bn = nn.Identity()


class PATConv(nn.Module):
    """Partial convolution with attention on the untouched channels (PartialNet's PATConv, ``Partial_conv3``).

    The first ``c1 // n_div`` channels get a bias-free 3x3 convolution, as in FasterNet's PConv; the other channels,
    which PConv leaves idle, go through

    - ``attn="channel"`` (stages 1-3 of every PartialNet variant): ``StyleChannelAttention`` (the reference's SRM),
      then BatchNorm;
    - ``attn="self"`` (the last stage): ``LayerNorm2d``, then ``RPEAttention`` (multi-head self-attention with
      iRPE's Euclidean position bias on the keys, dropout 0.1 while training).

    YAML arguments (Conv-like, ``c1`` filled in by Ultralytics; usually built by ``PartialNetBlock``):
    ``[c2, attn, n_div, num_heads]``.

    Args:
        c1 (int): Channels.
        c2 (int): Output channels; must equal ``c1``.
        attn (str): ``"channel"`` or ``"self"``.
        n_div (int): ``c1 // n_div`` channels are convolved (4 in every PartialNet variant).
        num_heads (int): Heads of the self-attention (4 in every reference config: ``patnet_t0: True``).

    Example:
        >>> PATConv(64, 64, "channel")(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 64, 8, 8])
    """

    # Pruning rule (integration.pruning_rules): every channel stays (its inputs, its outputs, the attention inside):
    # its split sizes and attention heads are integers a tracer cannot follow. Declared as kept layers rather than
    # yolo_pruning = False, so a PartialNet block that prunes its MLP around it gives no "left unpruned" notice.
    def yolo_pruning_kept_inputs(self) -> tuple[nn.Module, ...]:
        """Every layer inside keeps its input channels."""
        return tuple(self.children())

    def yolo_pruning_kept_outputs(self) -> tuple[nn.Module, ...]:
        """Every layer inside keeps its output channels."""
        return tuple(self.children())

    def __init__(self, c1: int, c2: int | None = None, attn: str = "channel", n_div: int = 4, num_heads: int = 4):
        super().__init__()
        c2 = c1 if c2 is None else c2
        if c2 != c1:
            raise ValueError(f"PATConv keeps its channel count, but got c1={c1} and c2={c2}")
        if attn not in PATCONV_ATTENTION:
            raise ValueError(f"PATConv attn must be one of {PATCONV_ATTENTION}, got attn={attn!r}")
        if not isinstance(n_div, int) or isinstance(n_div, bool) or not 1 < n_div <= c1:
            raise ValueError(f"PATConv n_div must be an integer in (1, c1={c1}], got n_div={n_div!r}")
        self.attn_kind = attn
        self.dim_conv = c1 // n_div
        self.dim_untouched = c1 - self.dim_conv
        if attn == "self" and (not isinstance(num_heads, int) or num_heads <= 0 or self.dim_untouched % num_heads):
            raise ValueError(
                f"PATConv self-attention needs its {self.dim_untouched} untouched channels (c1={c1}, n_div={n_div}) "
                f"divisible by num_heads={num_heads!r}"
            )
        self.conv = nn.Conv2d(self.dim_conv, self.dim_conv, 3, 1, 1, bias=False)
        if attn == "channel":
            self.attn = StyleChannelAttention(self.dim_untouched)
            self.norm = nn.BatchNorm2d(self.dim_untouched)  # after the attention, as in the reference
        else:
            self.norm = LayerNorm2d(self.dim_untouched)  # before the attention, as in the reference
            self.attn = RPEAttention(self.dim_untouched, num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve the first channels, attend over the rest, concatenate."""
        x1, x2 = torch.split(x, [self.dim_conv, self.dim_untouched], dim=1)
        x2 = self.norm(self.attn(x2)) if self.attn_kind == "channel" else self.attn(self.norm(x2))
        return torch.cat((self.conv(x1), x2), 1)
