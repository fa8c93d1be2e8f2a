"""PConv: the partial convolution of FasterNet (Chen et al., CVPR 2023, section 3.1)."""

from __future__ import annotations

import contextlib
import contextvars

import torch
from torch import nn
from torch.nn import functional

from .inference_layout import ChannelsLastInference, is_exporting

PCONV_MODES = ("split_cat", "slicing", "preallocated")
# What an exported graph computes PConv with (all equal to split_cat): ``split_cat``; ``aligned8``/``aligned16``: the
# convolved part widened to a multiple of 8/16 channels by identity kernels (the runtimes' channel packs: NCNN packs
# 4/8/16 channels, ONNX Runtime's NCHWc blocks 8/16), then split and concatenated as split_cat; ``full``: one 3x3
# conv over all channels, identity kernels on the untouched ones (no split, no concat).
PCONV_EXPORT_FORMS = ("split_cat", "aligned8", "aligned16", "full")
# Measured in ONNX Runtime, NCNN and MNN on whole yolov8n-fasternet detectors (docs/performance.md, "Export forms in
# ONNX Runtime, NCNN and MNN"): none of the others is faster than split_cat, so it stays what every export gets.
SELECTED_EXPORT_FORM = "split_cat"
_forced_export_form = contextvars.ContextVar("pconv_export_form", default=None)


@contextlib.contextmanager
def forced_export_form(form: str):
    """Fuse and export every PConv with export form ``form`` (for measuring the forms against each other)."""
    if form not in PCONV_EXPORT_FORMS:
        raise ValueError(f"PConv export form must be one of {PCONV_EXPORT_FORMS}, got {form!r}")
    token = _forced_export_form.set(form)
    try:
        yield
    finally:
        _forced_export_form.reset(token)


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
    channels-last activations. Export form (what a trace or an ONNX export records once fused): ``SELECTED_EXPORT_FORM``
    (``split_cat``, the fastest measured in ONNX Runtime, NCNN and MNN); ``forced_export_form(form)`` fuses with
    another of ``PCONV_EXPORT_FORMS`` (widened kernels, precomputed at fuse time, never used in training or eager).

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
        self.register_buffer("export_weight", None, persistent=False)  # the export form's kernel (deploy form)

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
        """Inference form: write into a preallocated output (fastest measured), channels-last on CPU; export form."""
        super().switch_to_deploy(channels_last)
        self.mode = "preallocated"
        form = _forced_export_form.get() or SELECTED_EXPORT_FORM
        width = self.export_width(form)
        weight = None if width == self.dim_conv else self.widened_weight(width)
        self.register_buffer("export_weight", weight, persistent=False)  # also on modules from older checkpoints

    def export_width(self, form: str) -> int:
        """How many leading channels the export form's 3x3 convolution covers."""
        c = self.dim_conv + self.dim_untouched
        if form == "full":
            return c
        align = {"aligned8": 8, "aligned16": 16}.get(form, 1)
        return min(-(-self.dim_conv // align) * align, c)

    @torch.no_grad()
    def widened_weight(self, width: int) -> torch.Tensor:
        """PConv's kernel on the first ``dim_conv`` channels, identity (centre-tap) kernels on the next ones."""
        w = self.conv.weight.new_zeros(width, width, 3, 3)
        w[: self.dim_conv, : self.dim_conv] = self.conv.weight
        rest = torch.arange(self.dim_conv, width)
        w[rest, rest, 1, 1] = 1.0
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the partial convolution in the configured mode (inference forms only where nothing records it)."""
        x = self.inference_layout(x)
        if self.mode != "split_cat" and not self.training and not torch.is_grad_enabled() and not is_exporting():
            return self.forward_slicing(x) if self.mode == "slicing" else self.forward_preallocated(x)
        if is_exporting() and getattr(self, "export_weight", None) is not None and not self.training:
            return self.forward_widened(x)
        return self.forward_split_cat(x)

    def forward_widened(self, x: torch.Tensor) -> torch.Tensor:
        """split_cat with the widened kernel ``export_weight``: the split falls on a channel-pack boundary."""
        width = self.export_weight.shape[0]
        if width == x.shape[1]:
            return functional.conv2d(x, self.export_weight, padding=1)
        x1, x2 = torch.split(x, [width, x.shape[1] - width], dim=1)
        return torch.cat((functional.conv2d(x1, self.export_weight, padding=1), x2), 1)

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
