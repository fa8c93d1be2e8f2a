"""FLOPs that Ultralytics' THOP-based count cannot see: work done by functional calls inside a module's forward."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def hooked_gflops(model: nn.Module, imgsz: int, cls: type, flops: Callable[[nn.Module, tuple, object], float]) -> float:
    """GFLOPs of one ``imgsz`` forward summed over every ``cls`` module, ``flops(module, inputs, output)`` each."""
    total = [0.0]

    def hook(m, inp, out):
        total[0] += flops(m, inp, out)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, cls)]
    if not hooks:
        return 0.0
    training = model.training
    try:
        with torch.inference_mode():  # eval: a batch of one must not touch BN statistics (nor fail on 1x1 maps)
            model.eval()(torch.zeros(1, 3, imgsz, imgsz, device=next(model.parameters()).device))
    finally:
        model.train(training)
        for h in hooks:
            h.remove()
    return total[0] / 1e9
