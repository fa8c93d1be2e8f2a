"""PConv: the partial convolution of FasterNet (Chen et al., CVPR 2023, section 3.1)."""

from __future__ import annotations

import torch
from torch import nn

from .inference_layout import ChannelsLastInference, is_exporting

PCONV_MODES = ("split_cat", "slicing", "preallocated")


class PConv(ChannelsLastInference, nn.Module):
    """Partial 3x3 convolution over the first ``c // n_div`` channels; the other channels pass through untouched.

    YAML arguments (as a Conv-like layer, ``c1`` is filled in by Ultralytics): ``[c2, n_div, mode]``.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels; must equal ``c1`` (PConv keeps the channel count).
        n_div (int): Fraction denominator: ``c1 // n_div`` channels are convolved (4 in every FasterNet variant).
        mode (str): ``"split_cat"`` (split, convolve, concatenate; training and inference), ``"slicing"`` (clone
            the input and overwrite the convolved channels in place, as the reference implementation's inference
            form) or ``"preallocated"`` (write the untouched channels and the convolved ones into a fresh output).
            The last two are inference forms: in training mode, whenever autograd is recording, and while exporting
            they run ``split_cat``, because in-place writes break backward and become ONNX ScatterND nodes.

    Inference form (``switch_to_deploy()``, called by ``model.fuse()``): mode ``preallocated``, on CPU with
    channels-last activations.

    Example:
        >>> PConv(64, 64)(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 64, 8, 8])
    """

    def __init__(self, c1: int, c2: int | None = None, n_div: int = 4, mode: str = "split_cat"):
        super().__init__()
        c2 = c1 if c2 is None else c2
        if c2 != c1:
            raise ValueError(f"PConv keeps its channel count, but got c1={c1} and c2={c2}")
        if not isinstance(n_div, int) or n_div < 1:
            raise ValueError(f"PConv n_div must be a positive integer, got n_div={n_div!r}")
        if n_div > c1:
            raise ValueError(f"PConv n_div={n_div} is larger than its channels c1={c1}: nothing would be convolved")
        if mode not in PCONV_MODES:
            raise ValueError(f"PConv mode must be one of {PCONV_MODES}, got mode={mode!r}")
        self.dim_conv = c1 // n_div
        self.dim_untouched = c1 - self.dim_conv
        self.mode = mode
        self.conv = nn.Conv2d(self.dim_conv, self.dim_conv, 3, 1, 1, bias=False)

    # Pruning rule (integration.pruning_rules): the convolved channels and the 3x3 conv stay whole, so dim_conv is the
    # unpruned c // n_div; only untouched channels are removed, and dim_untouched follows the pruned input width.
    yolo_pruning_attributes = ("dim_untouched",)

    def yolo_pruning_kept_inputs(self) -> tuple[nn.Module, ...]:
        """The 3x3 conv keeps its input channels: the convolved share is not pruned."""
        return (self.conv,)

    def yolo_pruning_kept_outputs(self) -> tuple[nn.Module, ...]:
        """The 3x3 conv keeps its output channels: PConv maps c channels to c channels."""
        return (self.conv,)

    def yolo_pruned(self, in_channels: int) -> None:
        """After pruning: the untouched part is what is left of the input beside the convolved channels."""
        self.dim_untouched = in_channels - self.dim_conv

    def switch_to_deploy(self, channels_last: bool = True) -> None:
        """Inference form: write into a preallocated output (fastest measured), channels-last on CPU."""
        super().switch_to_deploy(channels_last)
        self.mode = "preallocated"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the partial convolution in the configured mode (inference forms only where nothing records it)."""
        x = self.inference_layout(x)
        if self.mode != "split_cat" and not self.training and not torch.is_grad_enabled() and not is_exporting():
            return self.forward_slicing(x) if self.mode == "slicing" else self.forward_preallocated(x)
        return self.forward_split_cat(x)

    def forward_split_cat(self, x: torch.Tensor) -> torch.Tensor:
        """Split off the convolved channels, convolve them, and concatenate the untouched rest back."""
        x1, x2 = torch.split(x, [self.dim_conv, self.dim_untouched], dim=1)
        return torch.cat((self.conv(x1), x2), 1)

    def forward_slicing(self, x: torch.Tensor) -> torch.Tensor:
        """Overwrite the first channels of a copy of ``x`` in place (the copy keeps the caller's residual intact)."""
        x = x.clone()
        x[:, : self.dim_conv] = self.conv(x[:, : self.dim_conv])
        return x

    def forward_preallocated(self, x: torch.Tensor) -> torch.Tensor:
        """Write the untouched channels and the convolved ones into a fresh output: each output channel written once."""
        out = torch.empty_like(x)  # keeps x's memory format
        out[:, self.dim_conv :] = x[:, self.dim_conv :]
        out[:, : self.dim_conv] = self.conv(x[:, : self.dim_conv])
        return out
