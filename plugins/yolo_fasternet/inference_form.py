"""The inference form that ``model.fuse()`` selects for the plugin modules, after Ultralytics has folded the BNs.

Measured with ``benchmarks/performance.py`` on a 2-core AVX-512 CPU (see the README's performance section):

- **Channels-last on CPU.** oneDNN runs the 1x1 convolutions of a FasterNet block much faster on channels-last (NHWC)
  activations than on NCHW ones when the channel count is small (40 -> 80 at 160x160: 1.05 ms instead of 2.07 ms in
  the README's run; the NCHW time varies more between runs than the channels-last one). A fused model therefore turns
  its activations channels-last at the first plugin layer it meets; every later convolution, stock ones included,
  keeps that layout. Only the memory layout changes (outputs agree to float rounding, tested to 1e-4). It is skipped
  on GPUs (not measured there), while tracing or exporting (graphs stay layout-free), and for tensors that are not
  4-D.
- **Layer scale folded.** A FasterNet block's per-channel layer scale is multiplied into its projecting 1x1 conv.
- **PConv writes into a preallocated output** (mode ``preallocated``): each output channel is written once, by a
  plain copy or by the convolution's result, where ``slicing`` first copies all channels and then overwrites a
  quarter, and ``split_cat`` goes through ``torch.cat``. It measured fastest of the three at every FasterNet-T0 stage
  shape, NCHW and channels-last. It is an eager-inference form only: while training, recording gradients or
  exporting, PConv runs ``split_cat``, so exported graphs have no ScatterND nodes.

``select_inference_form(model, channels_last=False)`` turns the layout switch off again, for comparisons.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def is_exporting() -> bool:
    """Whether the forward pass is traced, scripted, exported or compiled (ONNX, TorchScript, OpenVINO, dynamo)."""
    return (
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
    )


def inference_layout(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last layout when ``module`` runs in the fused CPU inference form; ``x`` itself otherwise."""
    if (
        getattr(module, "channels_last", False)  # absent on modules unpickled from older checkpoints
        and x.device.type == "cpu"
        and x.dim() == 4
        and x.is_contiguous()  # dense NCHW; views such as C2f's chunks are left to the convolution that reads them
        and not module.training
        and not is_exporting()
    ):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def select_inference_form(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """Switch every plugin module of ``model`` to its inference form; idempotent. Called by ``model.fuse()``."""
    from .fasternet_block import FasterNetBlock
    from .pconv import PConv

    for module in model.modules():
        if isinstance(module, FasterNetBlock):
            module.fold_layer_scale()
        if isinstance(module, PConv):
            module.mode = "preallocated"
        if hasattr(type(module), "channels_last"):
            module.channels_last = channels_last
    return model


def fused_copy(module: nn.Module, channels_last: bool = True) -> nn.Module:
    """A fused copy of a bare module (a block, a stack of layers), fused exactly as ``model.fuse()`` fuses a model."""
    from ultralytics.nn.tasks import BaseModel

    holder = BaseModel()
    holder.model = copy.deepcopy(module)
    holder.fuse(verbose=False)
    return select_inference_form(holder.model, channels_last)
